"""Each recipient's path through Queued → Dispatched → a final status, decided up front.

Everything here is pure: a recipient's outcome is a function of (salt, key, recipient), and
its status at any instant is read off its `RecipientPlan`, so nothing needs a timer except
the callbacks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from smsgateway.simulator.config import Outcome
from smsgateway.simulator.encoding import Encoding


@dataclass(frozen=True, slots=True)
class Status:
    """A status as Sinch writes it: Title-case name and numeric code."""

    name: str
    code: int


QUEUED = Status("Queued", 400)
DISPATCHED = Status("Dispatched", 401)
CANCELLED = Status("Cancelled", 407)
EXPIRED = Status("Expired", 406)
UNMATCHED_PARAMETER = Status("Aborted", 405)
UNMATCHED_DEFAULT_ORIGINATOR = Status("Aborted", 410)
TOO_MANY_PARTS = Status("Aborted", 411)

OUTCOME_STATUS: dict[Outcome, Status] = {
    Outcome.DELIVERED: Status("Delivered", 0),
    Outcome.FAILED: Status("Failed", 402),
    Outcome.EXPIRED: EXPIRED,
    Outcome.REJECTED: Status("Rejected", 408),
    Outcome.ABORTED: Status("Aborted", 403),
}

# Statuses reported by an operator carry `operator` and `operator_status_at`.
OPERATOR_STATUSES = frozenset({"Dispatched", "Delivered", "Failed", "Expired", "Rejected"})


def unit_draw(salt: str, *parts: str) -> float:
    """A uniform number in [0, 1) that depends only on its arguments."""
    digest = hashlib.blake2b("|".join((salt, *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def pick_outcome(draw: float, mix: Mapping[Outcome, float]) -> Outcome:
    """The outcome whose slice of the normalised mix contains `draw`."""
    total = sum(mix.values())
    threshold = draw * total
    chosen = Outcome.DELIVERED
    for outcome, weight in mix.items():
        if weight <= 0:
            continue
        chosen = outcome
        if threshold < weight:
            return outcome
        threshold -= weight
    return chosen


def normalise_msisdn(recipient: str) -> str:
    """Digits only: callbacks and lookups may write a number with or without its `+`."""
    return recipient.removeprefix("+")


@dataclass(frozen=True, slots=True)
class RecipientPlan:
    """One recipient's timeline; `dispatched_at` is None when Dispatched is skipped."""

    recipient: str
    parts: int
    encoding: Encoding
    queued_at: float
    dispatched_at: float | None
    final: Status
    final_at: float

    def status_at(self, now: float, canceled_at: float | None) -> tuple[Status, float]:
        """The status in force at `now` and when it began (a cancelled batch is all Cancelled)."""
        if canceled_at is not None:
            return CANCELLED, canceled_at
        if now >= self.final_at:
            return self.final, self.final_at
        if self.dispatched_at is not None and now >= self.dispatched_at:
            return DISPATCHED, self.dispatched_at
        return QUEUED, self.queued_at

    def transitions(self) -> list[tuple[float, Status]]:
        """Every status change in order, as per-recipient callbacks report them."""
        steps = [(self.queued_at, QUEUED)]
        if self.dispatched_at is not None:
            steps.append((self.dispatched_at, DISPATCHED))
        steps.append((self.final_at, self.final))
        return steps


def plan_recipient(
    *,
    recipient: str,
    parts: int,
    encoding: Encoding,
    send_time: float,
    expire_at: float,
    final: Status,
    refused: bool,
    delay: float,
    jitter: float,
) -> RecipientPlan:
    """Lay out a timeline: Queued at send time, Dispatched at half the delay, final after it.

    A `refused` message (unmatched parameter, too many parts) ends at once, never dispatched.
    A message not final by `expire_at` ends there as Expired.
    """
    if refused:
        return RecipientPlan(recipient, parts, encoding, send_time, None, final, send_time)
    dispatched_at: float | None = send_time + delay / 2
    final_at = send_time + delay + jitter
    if expire_at < final_at:
        final, final_at = EXPIRED, expire_at
        if dispatched_at is not None and dispatched_at >= expire_at:
            dispatched_at = None
    return RecipientPlan(recipient, parts, encoding, send_time, dispatched_at, final, final_at)
