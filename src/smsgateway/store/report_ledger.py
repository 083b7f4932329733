"""Delivery reports in memory: what a report says (``IncomingReport``), what became of it
(``AppliedReport``), and the ``Ledger`` that applies reports to one locked message's
recipients, in order, before ``store.reports`` writes the result in one statement.

No SQL here: ``store.reports`` loads the ledgers under the message locks and writes what they
changed; this module decides what changes (``domain.status.merge``, derived message status).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from smsgateway.domain.status import (
    MergeRefusal,
    RecipientChange,
    RecipientReport,
    RecipientState,
    RecipientStatus,
    derive_message_status,
    merge,
)
from smsgateway.store.callbacks import CallbackRoute


class ReportOutcome(StrEnum):
    """What became of one report; stable strings for answers, events and metrics."""

    APPLIED = "applied"  # at least one recipient (or the message) changed
    UNCHANGED = "unchanged"  # stored, but every recipient already knew better (or as much)
    DUPLICATE = "duplicate"  # the very same report was stored before
    UNKNOWN_BATCH = "unknown_batch"  # no message yet: kept, applied when the batch id lands
    UNPROCESSABLE = "unprocessable"  # kept for operators, never applied


@dataclass(frozen=True, slots=True)
class RecipientUpdate:
    """One recipient's report; ``msisdn`` None means every recipient handed to Sinch."""

    msisdn: str | None
    report: RecipientReport


@dataclass(frozen=True, slots=True)
class IncomingReport:
    """A delivery report, read from the wire into the gateway's terms.

    ``message_ref`` is our message id when ``client_reference`` is one. ``summary_statuses``
    are the statuses of a batch-level report that names no recipients and mixes several
    statuses: nobody can tell which recipient got which, so only the message's status is
    derived from them. ``event_*`` fill the event row's columns. ``source`` says where a
    report came from when it was not a webhook (``reconciliation``: Sinch was asked for it);
    it goes into the event's detail and changes nothing else.
    """

    batch_id: str
    message_ref: uuid.UUID | None
    client_reference: str | None
    report_type: str
    payload: dict[str, Any]
    dedupe_key: str
    updates: tuple[RecipientUpdate, ...]
    summary_statuses: tuple[RecipientStatus, ...] = ()
    event_recipient: str | None = None
    event_status: RecipientStatus | None = None
    event_code: int | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class AppliedReport:
    """The outcome of one report; ``refusals`` maps recipients to why their state was kept."""

    outcome: ReportOutcome
    message_id: uuid.UUID | None = None
    changes: tuple[RecipientChange, ...] = ()
    refusals: dict[str, MergeRefusal] = field(default_factory=dict)
    unknown_recipients: tuple[str, ...] = ()
    message_status: str | None = None
    previous_message_status: str | None = None
    late: bool = False
    dedupe_key: str | None = None
    # When the message was handed to Sinch (None if not recorded yet): for timing metrics.
    submitted_at: datetime | None = None


@dataclass(slots=True)
class Ledger:
    """One locked message while reports are applied to it in memory: the recipients the
    reports name (whole), and how many of all its recipients are in each status."""

    message_id: uuid.UUID
    status: str
    route: CallbackRoute | None
    states: dict[str, RecipientState]
    sent: list[str]
    counts: Counter[RecipientStatus]
    loaded: dict[str, RecipientState] = field(default_factory=dict)
    loaded_status: str = ""
    submitted_at: datetime | None = None

    def __post_init__(self) -> None:
        self.loaded = dict(self.states)
        self.loaded_status = self.status

    def apply(
        self, report: IncomingReport, late_received_at: datetime | None
    ) -> tuple[PendingReport, EventRow]:
        states = self.states
        previous: dict[str, RecipientState] = {}
        refusals: dict[str, MergeRefusal] = {}
        unknown: list[str] = []
        for update in report.updates:
            targets = self.sent if update.msisdn is None else (update.msisdn,)
            for msisdn in targets:
                state = states.get(msisdn)
                if state is None:
                    unknown.append(msisdn)
                    continue
                result = merge(state, update.report)
                if result.refused is None:
                    previous.setdefault(msisdn, state)
                    states[msisdn] = result.state
                    refusals.pop(msisdn, None)
                elif states[msisdn] == previous.get(msisdn, state):
                    refusals[msisdn] = result.refused
        changes = tuple(
            RecipientChange(msisdn, previous[msisdn], states[msisdn])
            for msisdn in sorted(previous)
            if states[msisdn] != previous[msisdn]
        )
        for change in changes:
            self.counts[change.previous.status] -= 1
            self.counts[change.state.status] += 1
        derived = self._derive(report.summary_statuses)
        before = self.status
        if derived == before:
            derived = None
        if derived is not None:
            self.status = derived
        detail: dict[str, Any] = {"report": report.payload}
        if report.source is not None:
            detail["source"] = report.source
        if changes:
            detail["changed"] = [change.msisdn for change in changes]
        if refusals:
            detail["refused"] = {msisdn: reason.value for msisdn, reason in refusals.items()}
        if unknown:
            detail["unknown_recipients"] = sorted(set(unknown))
        if late_received_at is not None:
            detail["received_at"] = late_received_at.isoformat()
            detail["applied_late"] = True
        pending = PendingReport(
            message_id=self.message_id,
            report=report,
            changes=changes,
            refusals=refusals,
            unknown=tuple(sorted(set(unknown))),
            message_status=self.status,
            previous_message_status=before,
            status_moved=derived is not None,
            late=late_received_at is not None,
            route=self.route,
            submitted_at=self.submitted_at,
        )
        event = EventRow(
            self.message_id,
            report.event_recipient,
            None if report.event_status is None else report.event_status.value,
            report.event_code,
            detail,
            report.dedupe_key,
        )
        return pending, event

    def _derive(self, summary_statuses: tuple[RecipientStatus, ...]) -> str | None:
        present = {status for status, count in self.counts.items() if count > 0}
        if summary_statuses:
            # Nobody can tell which recipient got which status: the sent recipients count as
            # the summary's statuses, the others (refused before sending) as their own.
            unsent = Counter(self.counts)
            unsent.subtract(self.states[msisdn].status for msisdn in self.sent)
            others = {status for status, count in unsent.items() if count > 0}
            return derive_message_status([*summary_statuses, *others]).value
        if not present:
            return None
        return derive_message_status(present).value

    def recipient_writes(self) -> Iterable[tuple[str, RecipientState]]:
        for msisdn, state in self.states.items():
            if state != self.loaded[msisdn]:
                yield msisdn, state


@dataclass(frozen=True, slots=True)
class PendingReport:
    """A report applied in memory, waiting to learn whether its event was new."""

    message_id: uuid.UUID
    report: IncomingReport
    changes: tuple[RecipientChange, ...]
    refusals: dict[str, MergeRefusal]
    unknown: tuple[str, ...]
    message_status: str
    previous_message_status: str
    status_moved: bool
    late: bool
    route: CallbackRoute | None
    submitted_at: datetime | None = None

    def outcome(self, stored: bool) -> AppliedReport:
        if not stored and not self.changes and not self.status_moved:
            outcome = ReportOutcome.DUPLICATE
        elif self.changes or self.status_moved:
            outcome = ReportOutcome.APPLIED
        else:
            outcome = ReportOutcome.UNCHANGED
        return AppliedReport(
            outcome,
            self.message_id,
            self.changes,
            self.refusals,
            self.unknown,
            self.message_status,
            self.previous_message_status,
            late=self.late,
            dedupe_key=self.report.dedupe_key,
            submitted_at=self.submitted_at,
        )


@dataclass(frozen=True, slots=True)
class EventRow:
    message_id: uuid.UUID
    recipient: str | None
    status: str | None
    code: int | None
    detail: dict[str, Any]
    dedupe_key: str


def changed_recipients(results: Sequence[AppliedReport]) -> tuple[RecipientChange, ...]:
    """Every recipient change in ``results``, in order (for callers of ``apply_unmatched``)."""
    return tuple(change for result in results for change in result.changes)
