"""Delivery reports applied to messages: one transaction per report, order- and repeat-proof.

A report is matched to its message by Sinch's batch id, or, before the dispatcher has recorded
that id, by ``client_reference`` (our message id). The message row is locked (``FOR UPDATE``)
for the whole transaction, so reports about one message, and the dispatcher's own writes, take
turns: each recipient's new state is ``domain.status.merge`` of its current state and the
report, and the message's status is derived from all of its recipients, never from a stale
read. Locking the message rather than each recipient costs one lock per report, whatever the
batch size, and is what makes the derived status correct.

A report that matches no message is kept in ``unmatched_report`` (kind ``unknown_batch``) and
applied, in arrival order, once its batch id is recorded (``apply_unmatched``, which
``dispatch.record_submitted`` calls after its commit). Both sides commit their own write before
looking for the other's (the report path keeps the report, then looks for the batch again), so
whichever looks last finds the other's: a report is never stranded between "no such batch" and
"batch recorded". Taking the kept rows with ``DELETE ... RETURNING`` under the message lock
applies each once. Any later report for the batch also sweeps up kept ones.

A report is stored as an ``sms_event`` whose ``dedupe_key`` (a digest of the payload) is unique
per message: a report delivered twice is stored once and changes nothing the second time.

``AppliedReport.changes`` lists the recipients whose state changed; ``_apply`` queues a status
callback for each whose status changed (``store.callbacks``) in the same transaction, when the
message has a callback URL (its own, else its API key's default).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from smsgateway.domain.status import (
    MergeRefusal,
    RecipientReport,
    RecipientState,
    RecipientStatus,
    derive_message_status,
    merge,
)
from smsgateway.store.callbacks import CallbackRoute, enqueue_status_events

if TYPE_CHECKING:
    import asyncpg

    from smsgateway.store.pool import Connection

# Recipients the gateway itself refused are not in the Sinch batch: a batch-wide report
# (summary mode) says nothing about them.
_NOT_SENT: Final = RecipientStatus.OPTED_OUT.value


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
    derived from them. ``event_*`` fill the event row's columns.
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


@dataclass(frozen=True, slots=True)
class RecipientChange:
    """A recipient whose state a report changed."""

    msisdn: str
    previous: RecipientState
    state: RecipientState

    @property
    def status_changed(self) -> bool:
        return self.previous.status is not self.state.status


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


# ``kept`` only hints that reports wait for this batch (it may read from before the lock).
_MATCH = """
SELECT id, status, client_reference,
       coalesce(callback_url, (SELECT k.default_callback_url FROM api_key AS k
                               WHERE k.id = sms_log.api_key_id)) AS callback_url,
       EXISTS (SELECT 1 FROM unmatched_report
               WHERE kind = 'unknown_batch' AND batch_id = $1) AS kept
FROM sms_log
WHERE sinch_batch_id = $1 OR (id = $2 AND (sinch_batch_id IS NULL OR sinch_batch_id = $1))
ORDER BY sinch_batch_id = $1 DESC NULLS LAST
LIMIT 1
FOR UPDATE OF sms_log
"""

_KEPT = """
SELECT EXISTS (SELECT 1 FROM unmatched_report WHERE kind = 'unknown_batch' AND batch_id = $1)
"""

_LOCK_BY_BATCH = """
SELECT id, status, client_reference,
       coalesce(callback_url, (SELECT k.default_callback_url FROM api_key AS k
                               WHERE k.id = sms_log.api_key_id)) AS callback_url
FROM sms_log WHERE sinch_batch_id = $1 FOR UPDATE
"""

# Run after the message row is locked, so that it reads what the previous holder committed.
# The recipients a report is about come back whole; of the others, only their statuses.
_STATES = """
SELECT r.msisdn, r.status, r.sinch_code, r.status_at, r.operator_status_at, r.operator
FROM sms_recipient AS r
WHERE r.message_id = $1 AND (r.msisdn = ANY($2::text[]) OR ($3 AND r.status <> $4))
UNION ALL
SELECT DISTINCT NULL, r.status, NULL::int, NULL::timestamptz, NULL::timestamptz, NULL
FROM sms_recipient AS r
WHERE r.message_id = $1 AND NOT (r.msisdn = ANY($2::text[]) OR ($3 AND r.status <> $4))
"""

# One statement: the event (skipped if this very report was stored before), the recipients
# that changed, and the message's derived status when it moved.
_WRITE = """
WITH event AS (
    INSERT INTO sms_event (message_id, recipient, kind, status, sinch_code, detail, dedupe_key)
    VALUES ($1, $2, 'delivery_report', $3, $4, $5, $6)
    ON CONFLICT (message_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
    RETURNING id
), recipient AS (
    UPDATE sms_recipient AS r
    SET status = u.status, sinch_code = u.code, status_at = u.at,
        operator_status_at = u.operator_status_at, operator = u.operator, updated_at = now()
    FROM unnest($7::text[], $8::text[], $9::int[], $10::timestamptz[], $11::timestamptz[],
                $12::text[]) AS u(msisdn, status, code, at, operator_status_at, operator)
    WHERE r.message_id = $1 AND r.msisdn = u.msisdn
), message AS (
    UPDATE sms_log SET status = $13, updated_at = now()
    WHERE id = $1 AND $13::text IS NOT NULL AND status IS DISTINCT FROM $13
)
SELECT count(*) FROM event
"""

_INSERT_UNMATCHED = """
INSERT INTO unmatched_report
    (kind, batch_id, client_reference, report_type, dedupe_key, payload, report)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING id
"""

_TAKE_UNMATCHED = """
DELETE FROM unmatched_report
WHERE kind = 'unknown_batch' AND batch_id = $1
RETURNING id, client_reference, report_type, dedupe_key, payload, report, received_at
"""


async def record_report(connection: Connection, report: IncomingReport) -> AppliedReport:
    """Applies ``report`` to its message, or keeps it until its batch id is recorded."""
    async with connection.transaction():
        message = await connection.fetchrow(_MATCH, report.batch_id, report.message_ref)
        if message is not None:
            route = _callback_route(message)
            result = await _apply(connection, message["id"], message["status"], report, route)
            if message["kept"]:
                await _apply_kept(
                    connection, message["id"], result.message_status, report.batch_id, route
                )
            return result
        kept = await connection.fetchval(
            _INSERT_UNMATCHED,
            "unknown_batch",
            report.batch_id,
            report.client_reference,
            report.report_type,
            report.dedupe_key,
            report.payload,
            _report_json(report),
        )
    if kept is None:
        return AppliedReport(ReportOutcome.DUPLICATE)
    # Committed: if the batch id was recorded meanwhile, whoever looks last applies it.
    for applied in await apply_unmatched(connection, report.batch_id):
        if applied.dedupe_key == report.dedupe_key:
            return applied
    return AppliedReport(ReportOutcome.UNKNOWN_BATCH)


async def record_unprocessable(
    connection: Connection,
    payload: dict[str, Any],
    dedupe_key: str,
    *,
    report_type: str | None,
    batch_id: str | None,
    client_reference: str | None,
) -> AppliedReport:
    """Keeps a report that cannot be read (an unknown ``type``, a missing field) as it came."""
    stored = await connection.fetchval(
        _INSERT_UNMATCHED,
        "unprocessable",
        batch_id,
        client_reference,
        report_type,
        dedupe_key,
        payload,
        None,
    )
    return AppliedReport(ReportOutcome.UNPROCESSABLE if stored else ReportOutcome.DUPLICATE)


async def apply_unmatched(connection: Connection, batch_id: str) -> list[AppliedReport]:
    """Applies the reports kept for ``batch_id`` to its message, oldest first, in one
    transaction; none if nothing is kept or the batch id is not recorded.

    Call it after the transaction that recorded the batch id has committed.
    """
    if not await connection.fetchval(_KEPT, batch_id):
        return []
    async with connection.transaction():
        message = await connection.fetchrow(_LOCK_BY_BATCH, batch_id)
        if message is None:
            return []
        return await _apply_kept(
            connection, message["id"], message["status"], batch_id, _callback_route(message)
        )


async def _apply_kept(
    connection: Connection,
    message_id: uuid.UUID,
    status: str | None,
    batch_id: str,
    route: CallbackRoute | None,
) -> list[AppliedReport]:
    """Applies the kept reports of ``batch_id``; the caller holds the message's row lock."""
    rows = await connection.fetch(_TAKE_UNMATCHED, batch_id)
    applied = []
    for row in sorted(rows, key=lambda item: item["id"]):
        report = _report_from_row(batch_id, row)
        result = await _apply(
            connection,
            message_id,
            status or "",
            report,
            route,
            late_received_at=row["received_at"],
        )
        status = result.message_status or status
        applied.append(result)
    return applied


async def _apply(
    connection: Connection,
    message_id: uuid.UUID,
    message_status: str,
    report: IncomingReport,
    route: CallbackRoute | None,
    *,
    late_received_at: datetime | None = None,
) -> AppliedReport:
    named = sorted({u.msisdn for u in report.updates if u.msisdn is not None})
    batch_wide = any(u.msisdn is None for u in report.updates) or bool(report.summary_statuses)
    rows = await connection.fetch(_STATES, message_id, named, batch_wide, _NOT_SENT)
    current: dict[str, RecipientState] = {}
    others: set[RecipientStatus] = set()
    for row in rows:
        if row["msisdn"] is None:
            others.add(RecipientStatus(row["status"]))
        else:
            current[row["msisdn"]] = _state(row)
    states = dict(current)
    refusals: dict[str, MergeRefusal] = {}
    unknown: list[str] = []
    for update in report.updates:
        targets = list(current) if update.msisdn is None else [update.msisdn]
        for msisdn in targets:
            state = states.get(msisdn)
            if state is None:
                unknown.append(msisdn)
                continue
            result = merge(state, update.report)
            if result.refused is None:
                states[msisdn] = result.state
                refusals.pop(msisdn, None)
            elif states[msisdn] == current[msisdn]:
                refusals[msisdn] = result.refused
    changes = tuple(
        RecipientChange(msisdn, current[msisdn], states[msisdn])
        for msisdn in sorted(states)
        if states[msisdn] != current[msisdn]
    )
    if report.summary_statuses:
        derived: str | None = derive_message_status([*report.summary_statuses, *others]).value
    elif states or others:
        statuses = [state.status for state in states.values()]
        derived = derive_message_status([*statuses, *others]).value
    else:
        derived = None
    if derived == message_status:
        derived = None
    detail: dict[str, Any] = {"report": report.payload}
    if changes:
        detail["changed"] = [change.msisdn for change in changes]
    if refusals:
        detail["refused"] = {msisdn: reason.value for msisdn, reason in refusals.items()}
    if unknown:
        detail["unknown_recipients"] = sorted(set(unknown))
    if late_received_at is not None:
        detail["received_at"] = late_received_at.isoformat()
        detail["applied_late"] = True
    changed_states = [(change.msisdn, change.state) for change in changes]
    inserted = await connection.fetchval(
        _WRITE,
        message_id,
        report.event_recipient,
        None if report.event_status is None else report.event_status.value,
        report.event_code,
        detail,
        report.dedupe_key,
        [msisdn for msisdn, _ in changed_states],
        [state.status.value for _, state in changed_states],
        [state.code for _, state in changed_states],
        [state.at for _, state in changed_states],
        [state.operator_status_at for _, state in changed_states],
        [state.operator for _, state in changed_states],
        derived,
    )
    if route is not None and changes:
        # Same transaction as the change itself: a committed change always has its events.
        await enqueue_status_events(
            connection,
            message_id=message_id,
            route=route,
            message_status=derived or message_status,
            changes=changes,
        )
    if not inserted and not changes and derived is None:
        outcome = ReportOutcome.DUPLICATE
    elif changes or derived is not None:
        outcome = ReportOutcome.APPLIED
    else:
        outcome = ReportOutcome.UNCHANGED
    return AppliedReport(
        outcome,
        message_id,
        changes,
        refusals,
        tuple(sorted(set(unknown))),
        derived or message_status,
        message_status,
        late=late_received_at is not None,
        dedupe_key=report.dedupe_key,
    )


def _callback_route(message: asyncpg.Record) -> CallbackRoute | None:
    url: str | None = message["callback_url"]
    return None if url is None else CallbackRoute(url, message["client_reference"])


def _state(row: asyncpg.Record) -> RecipientState:
    return RecipientState(
        RecipientStatus(row["status"]),
        row["sinch_code"],
        row["status_at"],
        row["operator_status_at"],
        row["operator"],
    )


def _report_json(report: IncomingReport) -> dict[str, Any]:
    """What ``apply_unmatched`` needs besides the payload, as JSON."""
    return {
        "message_ref": None if report.message_ref is None else str(report.message_ref),
        "updates": [
            {
                "msisdn": update.msisdn,
                "status": update.report.status.value,
                "code": update.report.code,
                "at": _iso(update.report.at),
                "operator_status_at": _iso(update.report.operator_status_at),
                "operator": update.report.operator,
            }
            for update in report.updates
        ],
        "summary_statuses": [status.value for status in report.summary_statuses],
        "event_recipient": report.event_recipient,
        "event_status": None if report.event_status is None else report.event_status.value,
        "event_code": report.event_code,
    }


def _report_from_row(batch_id: str, row: asyncpg.Record) -> IncomingReport:
    stored: dict[str, Any] = row["report"]
    return IncomingReport(
        batch_id=batch_id,
        message_ref=None if stored["message_ref"] is None else uuid.UUID(stored["message_ref"]),
        client_reference=row["client_reference"],
        report_type=row["report_type"],
        payload=row["payload"],
        dedupe_key=row["dedupe_key"],
        updates=tuple(
            RecipientUpdate(
                item["msisdn"],
                RecipientReport(
                    RecipientStatus(item["status"]),
                    item["code"],
                    _datetime(item["at"]),
                    _datetime(item["operator_status_at"]),
                    item["operator"],
                ),
            )
            for item in stored["updates"]
        ),
        summary_statuses=tuple(RecipientStatus(s) for s in stored["summary_statuses"]),
        event_recipient=stored["event_recipient"],
        event_status=None
        if stored["event_status"] is None
        else RecipientStatus(stored["event_status"]),
        event_code=stored["event_code"],
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _datetime(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def changed_recipients(results: Sequence[AppliedReport]) -> tuple[RecipientChange, ...]:
    """Every recipient change in ``results``, in order (for callers of ``apply_unmatched``)."""
    return tuple(change for result in results for change in result.changes)
