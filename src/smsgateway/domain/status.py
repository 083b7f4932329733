"""Recipient and message statuses, Sinch's codes, and the merge that makes reports order-proof.

Sinch reports arrive out of order, more than once, and sometimes contradict each other. ``merge``
is a *join*: the state after any set of reports is the greatest of them (and of the starting
state) in one total order, so it does not depend on their order or repetition (commutative,
associative, idempotent). The order compares, in turn:

1. **stage**: queued < scheduled < submitted < dispatched < final. A later stage never
   regresses and an intermediate report never overwrites a final status.
2. **``at``** (Sinch's timestamp of the status): a known ``at`` beats a missing one, a later one
   an earlier one. Between two different finals (Sinch can send, say, Unknown and then Delivered)
   the one Sinch stamped later is Sinch's latest word and wins, whatever order they came in.
3. **final precedence**, for finals at the same ``at`` (or both without one), the most conclusive
   first: delivered > failed > rejected > aborted > expired > cancelled > deleted > opted_out >
   unknown.
4. then ``code`` (a known code beats none, a larger one a smaller one), ``operator_status_at``
   (as ``at``) and ``operator`` (as ``code``), so that no two different states tie.

A report that loses (or equals the current state) changes nothing; ``MergeResult.refused`` says
why. A wire status this module does not know is read as ``unknown``, the least conclusive final,
so any later-stamped report still replaces it.

The message's status is derived from its recipients' statuses by ``derive_message_status``:

- every recipient final: all ``delivered`` → delivered; some delivered → partially_delivered;
  none delivered and all sharing one of expired, rejected (``opted_out`` counts as rejected:
  the gateway refused to send) or cancelled → that status; otherwise → failed;
- some recipient not final: if every non-final recipient is scheduled → scheduled; if every one
  is queued or scheduled (not yet handed to Sinch) → queued; otherwise → submitted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Final, TypeVar


class RecipientStatus(StrEnum):
    """One recipient's status; the values are what ``sms_recipient.status`` holds."""

    QUEUED = "queued"
    SCHEDULED = "scheduled"
    SUBMITTED = "submitted"
    DISPATCHED = "dispatched"
    DELIVERED = "delivered"
    FAILED = "failed"
    REJECTED = "rejected"
    ABORTED = "aborted"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    DELETED = "deleted"
    UNKNOWN = "unknown"
    OPTED_OUT = "opted_out"


class MessageStatus(StrEnum):
    """A message's overall status; the values are what ``sms_log.status`` holds."""

    QUEUED = "queued"
    SCHEDULED = "scheduled"
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    PARTIALLY_DELIVERED = "partially_delivered"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


FINAL_MESSAGE_STATUSES: Final = frozenset(
    {
        MessageStatus.DELIVERED,
        MessageStatus.PARTIALLY_DELIVERED,
        MessageStatus.FAILED,
        MessageStatus.REJECTED,
        MessageStatus.EXPIRED,
        MessageStatus.CANCELLED,
    }
)
"""The statuses a message leaves no more (a late report changes recipients, not these)."""


class Stage(IntEnum):
    """How far a recipient has got; statuses of a lower stage never replace a higher one."""

    QUEUED = 0
    SCHEDULED = 1
    SUBMITTED = 2
    DISPATCHED = 3
    FINAL = 4


FINAL_STATUSES: Final = frozenset(
    {
        RecipientStatus.DELIVERED,
        RecipientStatus.FAILED,
        RecipientStatus.REJECTED,
        RecipientStatus.ABORTED,
        RecipientStatus.EXPIRED,
        RecipientStatus.CANCELLED,
        RecipientStatus.DELETED,
        RecipientStatus.UNKNOWN,
        RecipientStatus.OPTED_OUT,
    }
)

_STAGES: Final[Mapping[RecipientStatus, Stage]] = {
    RecipientStatus.QUEUED: Stage.QUEUED,
    RecipientStatus.SCHEDULED: Stage.SCHEDULED,
    RecipientStatus.SUBMITTED: Stage.SUBMITTED,
    RecipientStatus.DISPATCHED: Stage.DISPATCHED,
    **dict.fromkeys(FINAL_STATUSES, Stage.FINAL),
}

# Highest first: the order in which finals stamped at the same time win (rule 3 above).
_FINAL_PRECEDENCE: Final = (
    RecipientStatus.DELIVERED,
    RecipientStatus.FAILED,
    RecipientStatus.REJECTED,
    RecipientStatus.ABORTED,
    RecipientStatus.EXPIRED,
    RecipientStatus.CANCELLED,
    RecipientStatus.DELETED,
    RecipientStatus.OPTED_OUT,
    RecipientStatus.UNKNOWN,
)
_PRECEDENCE: Final[Mapping[RecipientStatus, int]] = {
    status: len(_FINAL_PRECEDENCE) - index for index, status in enumerate(_FINAL_PRECEDENCE)
}

_WIRE_STATUSES: Final[Mapping[str, RecipientStatus]] = {
    "queued": RecipientStatus.QUEUED,
    "dispatched": RecipientStatus.DISPATCHED,
    "delivered": RecipientStatus.DELIVERED,
    "failed": RecipientStatus.FAILED,
    "rejected": RecipientStatus.REJECTED,
    "aborted": RecipientStatus.ABORTED,
    "cancelled": RecipientStatus.CANCELLED,
    # The batch resource spells it "canceled"; accept that spelling in a report too.
    "canceled": RecipientStatus.CANCELLED,
    "expired": RecipientStatus.EXPIRED,
    "deleted": RecipientStatus.DELETED,
    "unknown": RecipientStatus.UNKNOWN,
}

SINCH_CODE_MEANINGS: Final[Mapping[int, str]] = {
    0: "delivered",
    400: "queued",
    401: "dispatched",
    402: "message unroutable",
    403: "internal error",
    404: "temporary delivery failure",
    405: "unmatched parameter",
    406: "internal expiry",
    407: "cancelled",
    408: "internal reject",
    410: "unmatched default originator",
    411: "exceeded parts limit",
    412: "unprovisioned region",
    413: "blocked account",
    # The contract names 414-418 as MMS-only codes without their individual meanings.
    **dict.fromkeys(range(414, 419), "MMS-only failure"),
}
"""Sinch's delivery-report codes; other values are the operator's SMPP error codes."""

# How a recipient's final status counts when all recipients share it (for the message).
_SHARED_OUTCOMES: Final[Mapping[RecipientStatus, MessageStatus]] = {
    RecipientStatus.EXPIRED: MessageStatus.EXPIRED,
    RecipientStatus.REJECTED: MessageStatus.REJECTED,
    RecipientStatus.OPTED_OUT: MessageStatus.REJECTED,
    RecipientStatus.CANCELLED: MessageStatus.CANCELLED,
}


def is_final(status: RecipientStatus) -> bool:
    """Whether ``status`` is final: nothing but another final can replace it."""
    return status in FINAL_STATUSES


def stage_of(status: RecipientStatus) -> Stage:
    """The stage ``status`` belongs to."""
    return _STAGES[status]


def describe_code(code: int) -> str | None:
    """A short meaning for a Sinch status code, or None for operator codes we cannot name."""
    return SINCH_CODE_MEANINGS.get(code)


@dataclass(frozen=True, slots=True)
class WireStatus:
    """A status as read from a report: ``recognised`` is false when ``raw`` was not one of
    Sinch's statuses, which is then read as ``unknown``."""

    status: RecipientStatus
    raw: str
    recognised: bool


def parse_wire_status(raw: str) -> WireStatus:
    """Read Sinch's Title-case status (any case, surrounding spaces ignored); never raises."""
    status = _WIRE_STATUSES.get(raw.strip().lower())
    if status is None:
        return WireStatus(RecipientStatus.UNKNOWN, raw, recognised=False)
    return WireStatus(status, raw, recognised=True)


def _utc(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class RecipientState:
    """What is known about one recipient; timestamps must be timezone-aware (kept in UTC)."""

    status: RecipientStatus
    code: int | None = None
    at: datetime | None = None
    operator_status_at: datetime | None = None
    operator: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", _utc(self.at, "at"))
        object.__setattr__(
            self, "operator_status_at", _utc(self.operator_status_at, "operator_status_at")
        )


@dataclass(frozen=True, slots=True)
class RecipientChange:
    """A recipient whose state changed (by a report, or by the gateway itself)."""

    msisdn: str
    previous: RecipientState
    state: RecipientState

    @property
    def status_changed(self) -> bool:
        return self.previous.status is not self.state.status


@dataclass(frozen=True, slots=True)
class RecipientReport:
    """One report about one recipient, from a callback, a poll, or our own progress."""

    status: RecipientStatus
    code: int | None = None
    at: datetime | None = None
    operator_status_at: datetime | None = None
    operator: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", _utc(self.at, "at"))
        object.__setattr__(
            self, "operator_status_at", _utc(self.operator_status_at, "operator_status_at")
        )

    def to_state(self) -> RecipientState:
        """The state this report describes, were it the only one."""
        return RecipientState(
            self.status, self.code, self.at, self.operator_status_at, self.operator
        )


INITIAL_STATE: Final = RecipientState(RecipientStatus.QUEUED)
"""Where every recipient starts."""


class MergeRefusal(StrEnum):
    """Why a report left the state as it was; stable strings for events and metrics."""

    DUPLICATE = "duplicate"
    FINAL_ALREADY = "final_already"
    EARLIER_STAGE = "earlier_stage"
    SUPERSEDED = "superseded"


@dataclass(frozen=True, slots=True)
class MergeResult:
    """The state after a report; ``refused`` is set exactly when the state is unchanged."""

    previous: RecipientState
    state: RecipientState
    refused: MergeRefusal | None

    @property
    def changed(self) -> bool:
        return self.refused is None

    @property
    def status_changed(self) -> bool:
        """Whether the status itself moved (not only a timestamp or code)."""
        return self.state.status is not self.previous.status


def merge(current: RecipientState, report: RecipientReport) -> MergeResult:
    """Join ``report`` into ``current``: the greater of the two in the order of the module doc."""
    candidate = report.to_state()
    new_key, current_key = _order_key(candidate), _order_key(current)
    if new_key > current_key:
        return MergeResult(current, candidate, None)
    if new_key == current_key:
        return MergeResult(current, current, MergeRefusal.DUPLICATE)
    current_stage, report_stage = stage_of(current.status), stage_of(report.status)
    if current_stage is Stage.FINAL and report_stage is not Stage.FINAL:
        reason = MergeRefusal.FINAL_ALREADY
    elif report_stage < current_stage:
        reason = MergeRefusal.EARLIER_STAGE
    else:
        reason = MergeRefusal.SUPERSEDED
    return MergeResult(current, current, reason)


def fold_reports(
    reports: Iterable[RecipientReport], start: RecipientState = INITIAL_STATE
) -> RecipientState:
    """The state after applying ``reports`` in turn to ``start``."""
    state = start
    for report in reports:
        state = merge(state, report).state
    return state


def derive_message_status(statuses: Iterable[RecipientStatus]) -> MessageStatus:
    """A message's status from its recipients' (rules in the module doc); raises ValueError
    for no recipients."""
    distinct = frozenset(statuses)
    if not distinct:
        raise ValueError("a message has at least one recipient")
    pending = distinct - FINAL_STATUSES
    if pending:
        if pending == {RecipientStatus.SCHEDULED}:
            return MessageStatus.SCHEDULED
        if pending <= {RecipientStatus.QUEUED, RecipientStatus.SCHEDULED}:
            return MessageStatus.QUEUED
        return MessageStatus.SUBMITTED
    if RecipientStatus.DELIVERED in distinct:
        if distinct == {RecipientStatus.DELIVERED}:
            return MessageStatus.DELIVERED
        return MessageStatus.PARTIALLY_DELIVERED
    shared = {_SHARED_OUTCOMES.get(status, MessageStatus.FAILED) for status in distinct}
    if len(shared) == 1:
        return shared.pop()
    return MessageStatus.FAILED


_T = TypeVar("_T")

# The order key: tuples compare element by element, and an absent value is the empty tuple,
# which is less than any present one, so None never meets a datetime in a comparison.
_Key = tuple[int, tuple[datetime, ...], int, tuple[int, ...], tuple[datetime, ...], tuple[str, ...]]


def _order_key(state: RecipientState) -> _Key:
    return (
        stage_of(state.status),
        _present(state.at),
        _PRECEDENCE.get(state.status, 0),
        _present(state.code),
        _present(state.operator_status_at),
        _present(state.operator),
    )


def _present(value: _T | None) -> tuple[_T, ...]:
    return () if value is None else (value,)
