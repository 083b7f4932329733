"""When to try handing a message to Sinch again, and when to stop trying.

Pure: the random source and the current time are arguments. The delay is exponential with full
jitter (uniform in ``[0, min(max_delay, base_delay * 2**retry)]``, so that workers failing
together do not come back together); a Retry-After from Sinch replaces it, capped at
``max_retry_after``. A message is given up when it would be past its ``expire_at`` by the next
try, when it is older than ``max_age``, or after ``max_attempts`` tries (when set).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class GiveUpReason(StrEnum):
    """Why a message will not be tried again; stable strings for status codes and metrics."""

    EXPIRED = "expired_while_retrying"
    MAX_AGE = "max_age_exceeded"
    MAX_ATTEMPTS = "max_attempts_exceeded"


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Delays in seconds; ``max_attempts`` counts every try, ``None`` for no limit."""

    base_delay: float = 1.0
    max_delay: float = 300.0
    max_retry_after: float = 600.0
    max_age: timedelta = timedelta(days=1)
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if min(self.base_delay, self.max_delay, self.max_retry_after) < 0:
            raise ValueError("backoff delays must not be negative")
        if self.max_age <= timedelta(0):
            raise ValueError("max_age must be positive")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")


@dataclass(frozen=True, slots=True)
class RetryAt:
    """Try again after ``delay`` seconds, that is at ``due_at``."""

    delay: float
    due_at: datetime


@dataclass(frozen=True, slots=True)
class GiveUp:
    reason: GiveUpReason


def retry_delay(
    policy: BackoffPolicy,
    retry: int,
    random: Callable[[], float],
    retry_after: float | None = None,
) -> float:
    """The wait before retry number ``retry`` (0 for the first retry), in seconds.

    ``random`` returns a float in ``[0, 1)``. Sinch's Retry-After, when given, wins, up to the cap.
    """
    if retry_after is not None and retry_after == retry_after:  # NaN is no advice at all
        return min(max(retry_after, 0.0), policy.max_retry_after)
    # Cap the exponent before 2**n overflows a float; max_delay binds long before anyway.
    ceiling = min(policy.max_delay, policy.base_delay * 2.0 ** min(max(retry, 0), 64))
    return min(ceiling, max(0.0, random() * ceiling))


def plan_retry(
    policy: BackoffPolicy,
    *,
    attempts: int,
    accepted_at: datetime,
    expire_at: datetime | None,
    now: datetime,
    random: Callable[[], float],
    retry_after: float | None = None,
    min_delay: float = 0.0,
) -> RetryAt | GiveUp:
    """After ``attempts`` failed tries (at least 1): when to try again, or why not to.

    A try at or after ``expire_at`` is pointless, so that gives up at once; the ``max_age``
    deadline instead gets a last try at the deadline itself, unless Retry-After forbids it.
    ``min_delay`` is the least wait, whatever the backoff drew.
    """
    if policy.max_attempts is not None and attempts >= policy.max_attempts:
        return GiveUp(GiveUpReason.MAX_ATTEMPTS)
    if expire_at is not None and now >= expire_at:
        return GiveUp(GiveUpReason.EXPIRED)
    deadline = accepted_at + policy.max_age
    if now >= deadline:
        return GiveUp(GiveUpReason.MAX_AGE)
    delay = max(retry_delay(policy, attempts - 1, random, retry_after), min_delay)
    due_at = now + timedelta(seconds=delay)
    if expire_at is not None and due_at >= expire_at:
        return GiveUp(GiveUpReason.EXPIRED)
    if due_at > deadline:
        if retry_after is not None:
            # Sinch asked us not to come back before then: that is past our own deadline.
            return GiveUp(GiveUpReason.MAX_AGE)
        due_at = deadline
        delay = (deadline - now).total_seconds()
    return RetryAt(delay=delay, due_at=due_at)
