"""When to ask Sinch about a message whose delivery reports have not all arrived, and when to stop.

Pure: the random source and the current time are arguments.

- **First check**: ``first_check`` seconds after the send (the dispatcher schedules it).
- **Backoff**: after round ``n`` (1 for the first) left a recipient without a final status, or
  failed (Sinch 5xx, 429, 401, no answer), the next round comes ``min(max_interval,
  first_check * 2**(n-1))`` seconds later, times a jitter factor in ``[0.5, 1]`` (so that the
  rounds of messages sent together spread out, and never come sooner than half the interval);
  a Retry-After from Sinch is honoured (the next round is never sooner than it).
- **Expiry**: Sinch stops trying to deliver at the batch's ``expire_at`` and then reports
  ``Expired``; rounds go on until ``expires_at + expiry_grace`` (the last one at that instant).
  A message still not final after it is given up: it is not asked about again, its recipients
  keep the status they have (the gateway does not invent an outcome Sinch did not report), and
  the give-up is recorded as an event and counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from smsgateway.domain.status import RecipientStatus, is_final

EXPIRY_GRACE: Final = timedelta(minutes=15)
"""How long after Sinch's expiry a report is still awaited (the last check comes then)."""


class GiveUpReason(StrEnum):
    """Why a message is no longer reconciled; stable strings for events and metrics."""

    EXPIRED = "expired"  # past its expiry (plus the grace) and still not final
    UNKNOWN_BATCH = "unknown_batch"  # Sinch answered 404 for the batch


@dataclass(frozen=True, slots=True)
class ReconcilePolicy:
    """Intervals in seconds; ``max_lookups`` caps per-recipient report calls per message per
    round (made only for recipients the batch report does not settle)."""

    first_check: float = 900.0
    max_interval: float = 3600.0
    expiry_grace: timedelta = EXPIRY_GRACE
    max_lookups: int = 20

    def __post_init__(self) -> None:
        if self.first_check <= 0 or self.max_interval <= 0:
            raise ValueError("first_check and max_interval must be positive")
        if self.max_interval < self.first_check:
            raise ValueError("max_interval must be at least first_check")
        if self.expiry_grace < timedelta(0):
            raise ValueError("expiry_grace must not be negative")
        if self.max_lookups < 0:
            raise ValueError("max_lookups must not be negative")


@dataclass(frozen=True, slots=True)
class CheckAgain:
    """Ask Sinch again at ``due_at``."""

    due_at: datetime


@dataclass(frozen=True, slots=True)
class GiveUp:
    reason: GiveUpReason


def interval_after(policy: ReconcilePolicy, rounds: int, random: Callable[[], float]) -> float:
    """Seconds to wait after round number ``rounds`` (1 for the first); ``random`` in [0, 1)."""
    exponent = min(max(rounds - 1, 0), 64)
    ceiling = min(policy.max_interval, policy.first_check * 2.0**exponent)
    return ceiling * (0.5 + 0.5 * random())


def plan_next_check(
    policy: ReconcilePolicy,
    *,
    rounds: int,
    expires_at: datetime,
    now: datetime,
    random: Callable[[], float],
    retry_after: float | None = None,
) -> CheckAgain | GiveUp:
    """After ``rounds`` rounds left the message unresolved: when to ask again, or give up."""
    deadline = expires_at + policy.expiry_grace
    if now >= deadline:
        return GiveUp(GiveUpReason.EXPIRED)
    delay = interval_after(policy, rounds, random)
    if retry_after is not None and retry_after == retry_after:  # NaN is no advice
        delay = max(delay, retry_after)
    return CheckAgain(min(now + timedelta(seconds=delay), deadline))


def lookups_needed(
    pending: Iterable[str], answered: Mapping[str, RecipientStatus], limit: int
) -> tuple[str, ...]:
    """The pending recipients the batch report did not name (at most ``limit``, in order):
    only a per-recipient report can settle them. A recipient the batch report names is
    settled by it, or is still on its way (``Queued``/``Dispatched``): asking each one
    separately would say the same."""
    missing = [msisdn for msisdn in pending if msisdn not in answered]
    return tuple(missing[:limit])


def unresolved(statuses: Mapping[str, RecipientStatus]) -> tuple[str, ...]:
    """The recipients among ``statuses`` that are not final yet, in order."""
    return tuple(msisdn for msisdn, status in statuses.items() if not is_final(status))
