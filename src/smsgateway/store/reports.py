"""Delivery reports applied to messages: a batch of reports per transaction, order- and
repeat-proof.

A report is matched to its message by Sinch's batch id, or, before the dispatcher has recorded
that id, by ``client_reference`` (our message id). ``record_reports`` takes many reports at
once (the service coalesces concurrent webhook calls), so that under load one transaction, one
commit and a handful of statements carry a whole batch of reports instead of each report
paying for its own.

- **Locking.** Every message a batch touches is locked (``FOR UPDATE``, in id order, so two
  batches never wait on each other in a cycle) for the whole transaction: reports about one
  message, and the dispatcher's own writes, take turns. Each recipient's new state is
  ``domain.status.merge`` of its current state and the report, applied in arrival order, and
  the message's status is derived from all of its recipients, never from a stale read.
  Locking the message rather than each recipient costs one lock per message, whatever the
  batch size, and is what makes the derived status correct.
- **Early reports.** A report that matches no message is kept in ``unmatched_report`` (kind
  ``unknown_batch``) and applied, in arrival order, once its batch id is recorded
  (``apply_unmatched``, which the dispatcher calls once its ``dispatch.record_submitted`` has
  committed). Both sides commit their own write before looking for the other's (the report
  path keeps the report, then looks for the batch again), so whichever looks last finds the
  other's: a report is
  never stranded between "no such batch" and "batch recorded". Taking the kept rows with
  ``DELETE ... RETURNING`` under the message lock applies each once. Any later report for the
  batch also sweeps up kept ones, before itself, since they arrived first.
- **Duplicates.** A report is stored as an ``sms_event`` whose ``dedupe_key`` (a digest of the
  payload) is unique per message: a report delivered twice, even twice in one batch, is stored
  once and changes nothing the second time.
- **Callbacks.** ``AppliedReport.changes`` lists the recipients whose state changed; a status
  callback is queued for each whose status changed (``store.callbacks``) in the same
  transaction, when the message has a callback URL (its own, else its API key's default).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from smsgateway.domain.message_events import MessageEventKind
from smsgateway.domain.status import RecipientReport, RecipientState, RecipientStatus
from smsgateway.store.batch_adoption import adopt_batches
from smsgateway.store.callbacks import CallbackRoute, enqueue_status_events
from smsgateway.store.report_ledger import (
    AppliedReport,
    EventRow,
    IncomingReport,
    Ledger,
    PendingReport,
    RecipientUpdate,
    ReportOutcome,
    changed_recipients,
)

# The report types live with the ledger; callers keep reading them from here.
__all__ = [
    "AppliedReport",
    "IncomingReport",
    "RecipientUpdate",
    "ReportOutcome",
    "apply_unmatched",
    "changed_recipients",
    "kept_batches",
    "record_report",
    "record_reports",
    "record_unprocessable",
]

if TYPE_CHECKING:
    import asyncpg

    from smsgateway.store.pool import Connection

# Recipients the gateway itself refused are not in the Sinch batch: a batch-wide report
# (summary mode) says nothing about them.
_NOT_SENT: Final = RecipientStatus.OPTED_OUT.value


# Finds each report's message and locks it, in one statement. ``kept`` only hints that reports
# wait for this batch (it may read from before the lock). Rows come back in id order, which is
# the order they are locked in; a message named by several reports comes back once per report.
_FIND_AND_LOCK = """
WITH found AS (
    SELECT u.position, m.id,
           EXISTS (SELECT 1 FROM unmatched_report AS k
                   WHERE k.kind = 'unknown_batch' AND k.batch_id = u.batch_id) AS kept
    FROM unnest($1::text[], $2::uuid[]) WITH ORDINALITY AS u(batch_id, ref, position)
    CROSS JOIN LATERAL (
        SELECT s.id FROM sms_log AS s
        WHERE s.sinch_batch_id = u.batch_id
           OR (s.id = u.ref AND (s.sinch_batch_id IS NULL OR s.sinch_batch_id = u.batch_id))
        ORDER BY s.sinch_batch_id = u.batch_id DESC NULLS LAST
        LIMIT 1
    ) AS m
)
SELECT f.position, f.kept, s.id, s.status, s.sinch_batch_id, s.client_reference, s.submitted_at,
       coalesce(s.callback_url, (SELECT k.default_callback_url FROM api_key AS k
                                 WHERE k.id = s.api_key_id)) AS callback_url
FROM found AS f JOIN sms_log AS s ON s.id = f.id
ORDER BY s.id
FOR UPDATE OF s
"""

_LOCK_BY_BATCH = """
SELECT id, status, sinch_batch_id, client_reference, submitted_at,
       coalesce(callback_url, (SELECT k.default_callback_url FROM api_key AS k
                               WHERE k.id = sms_log.api_key_id)) AS callback_url
FROM sms_log WHERE sinch_batch_id = $1 FOR UPDATE
"""

_KEPT = """
SELECT EXISTS (SELECT 1 FROM unmatched_report WHERE kind = 'unknown_batch' AND batch_id = $1)
"""

_TAKE_KEPT = """
DELETE FROM unmatched_report
WHERE kind = 'unknown_batch' AND batch_id = ANY($1::text[])
RETURNING id, batch_id, client_reference, report_type, dedupe_key, payload, report, received_at
"""

# Run after the messages are locked, so that it reads what the previous holders committed.
# Whole rows for the recipients the reports name (all sent ones for a batch-wide report), and
# every message's count of recipients per status, from which its status is derived.
_LOAD_STATES = """
SELECT r.message_id, r.msisdn, r.status, r.sinch_code, r.status_at, r.operator_status_at,
       r.operator, NULL::bigint AS how_many
FROM unnest($1::uuid[], $2::text[]) AS w(message_id, msisdn)
JOIN sms_recipient AS r ON r.message_id = w.message_id AND r.msisdn = w.msisdn
UNION ALL
SELECT r.message_id, r.msisdn, r.status, r.sinch_code, r.status_at, r.operator_status_at,
       r.operator, NULL
FROM sms_recipient AS r
WHERE r.message_id = ANY($3::uuid[]) AND r.status <> $4
UNION ALL
SELECT r.message_id, NULL, r.status, NULL, NULL, NULL, NULL, count(*)
FROM sms_recipient AS r
WHERE r.message_id = ANY($5::uuid[])
GROUP BY r.message_id, r.status
"""

# One statement: the events (each skipped if that very report was stored before), the
# recipients that changed, and the messages whose derived status moved.
_WRITE = f"""
WITH event AS (
    INSERT INTO sms_event (message_id, recipient, kind, status, sinch_code, detail, dedupe_key)
    SELECT e.message_id, e.recipient, '{MessageEventKind.DELIVERY_REPORT}', e.status, e.code,
           e.detail, e.dedupe_key
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::jsonb[], $6::text[])
         WITH ORDINALITY AS e(message_id, recipient, status, code, detail, dedupe_key, position)
    ORDER BY e.position
    ON CONFLICT (message_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
    RETURNING message_id, dedupe_key
), recipient AS (
    UPDATE sms_recipient AS r
    SET status = u.status, sinch_code = u.code, status_at = u.at,
        operator_status_at = u.operator_status_at, operator = u.operator, updated_at = now()
    FROM unnest($7::uuid[], $8::text[], $9::text[], $10::int[], $11::timestamptz[],
                $12::timestamptz[], $13::text[])
         AS u(message_id, msisdn, status, code, at, operator_status_at, operator)
    WHERE r.message_id = u.message_id AND r.msisdn = u.msisdn
), message AS (
    UPDATE sms_log AS m SET status = u.status, updated_at = now()
    FROM unnest($14::uuid[], $15::text[]) AS u(id, status)
    WHERE m.id = u.id
)
SELECT message_id, dedupe_key FROM event
"""

_KEEP = """
INSERT INTO unmatched_report
    (kind, batch_id, client_reference, report_type, dedupe_key, payload, report)
SELECT 'unknown_batch', u.batch_id, u.client_reference, u.report_type, u.dedupe_key,
       u.payload, u.report
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::jsonb[])
     WITH ORDINALITY AS u(batch_id, client_reference, report_type, dedupe_key, payload, report,
                          position)
ORDER BY u.position
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING dedupe_key
"""

_INSERT_UNMATCHED = """
INSERT INTO unmatched_report
    (kind, batch_id, client_reference, report_type, dedupe_key, payload, report)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING id
"""


async def record_report(connection: Connection, report: IncomingReport) -> AppliedReport:
    """Applies ``report`` to its message, or keeps it until its batch id is recorded."""
    (applied,) = await record_reports(connection, [report])
    return applied


async def record_reports(
    connection: Connection, reports: Sequence[IncomingReport]
) -> list[AppliedReport]:
    """Applies ``reports``, in order, each to its message, in one transaction; keeps those
    whose batch id is not recorded yet. Returns what became of each, in the same order."""
    results: list[AppliedReport | None] = [None] * len(reports)
    async with connection.transaction():
        rows = await connection.fetch(
            _FIND_AND_LOCK,
            [report.batch_id for report in reports],
            [report.message_ref for report in reports],
        )
        messages: dict[uuid.UUID, asyncpg.Record] = {}
        owners: dict[int, uuid.UUID] = {}
        hinted: dict[str, uuid.UUID] = {}
        for row in rows:
            index = row["position"] - 1
            report = reports[index]
            if not _belongs(row, report):
                continue  # its batch id was recorded as another one meanwhile
            messages[row["id"]] = row
            owners[index] = row["id"]
            if row["kept"]:
                hinted.setdefault(report.batch_id, row["id"])
        statuses = await _adopt_batch_ids(connection, reports, messages, owners)
        queue: list[tuple[uuid.UUID, IncomingReport, datetime | None, int | None]] = []
        if hinted:
            kept = await connection.fetch(_TAKE_KEPT, list(hinted))
            for row in sorted(kept, key=lambda item: item["id"]):
                report = _report_from_row(row["batch_id"], row)
                queue.append((hinted[row["batch_id"]], report, row["received_at"], None))
        queue.extend((owners[index], reports[index], None, index) for index in sorted(owners))
        if queue:
            for index, applied in await _apply_all(connection, messages, statuses, queue):
                if index is not None:
                    results[index] = applied
        orphans = [index for index in range(len(reports)) if index not in owners]
        if orphans:
            newly_kept = await _keep(connection, [reports[index] for index in orphans])
            for index in orphans:
                results[index] = AppliedReport(
                    ReportOutcome.UNKNOWN_BATCH
                    if reports[index].dedupe_key in newly_kept
                    else ReportOutcome.DUPLICATE
                )
                newly_kept.discard(reports[index].dedupe_key)
    # Committed: if a batch id was recorded meanwhile, whoever looks last applies the report.
    waiting = {
        reports[index].batch_id
        for index, result in enumerate(results)
        if result is not None and result.outcome is ReportOutcome.UNKNOWN_BATCH
    }
    late: dict[str, AppliedReport] = {}
    for batch_id in sorted(waiting):
        for applied in await apply_unmatched(connection, batch_id):
            if applied.dedupe_key is not None:
                late[applied.dedupe_key] = applied
    final: list[AppliedReport] = []
    for report, result in zip(reports, results, strict=True):
        assert result is not None
        if result.outcome is ReportOutcome.UNKNOWN_BATCH and report.dedupe_key in late:
            result = late.pop(report.dedupe_key)
        final.append(result)
    return final


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


async def kept_batches(connection: Connection, batch_ids: Sequence[str]) -> frozenset[str]:
    """Those of ``batch_ids`` that have reports kept for them, waiting to be applied."""
    rows = await connection.fetch(
        "SELECT DISTINCT batch_id FROM unmatched_report"
        " WHERE kind = 'unknown_batch' AND batch_id = ANY($1::text[])",
        list(batch_ids),
    )
    return frozenset(row["batch_id"] for row in rows)


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
        rows = await connection.fetch(_TAKE_KEPT, [batch_id])
        queue: list[tuple[uuid.UUID, IncomingReport, datetime | None, int | None]] = [
            (message["id"], _report_from_row(batch_id, row), row["received_at"], None)
            for row in sorted(rows, key=lambda item: item["id"])
        ]
        if not queue:
            return []
        applied = await _apply_all(connection, {message["id"]: message}, {}, queue)
        return [result for _, result in applied]


def _belongs(message: asyncpg.Record, report: IncomingReport) -> bool:
    """Whether the locked ``message`` (as it is now) is still the one ``report`` is about."""
    recorded: str | None = message["sinch_batch_id"]
    if recorded == report.batch_id:
        return True
    return bool(message["id"] == report.message_ref and recorded is None)


async def _adopt_batch_ids(
    connection: Connection,
    reports: Sequence[IncomingReport],
    messages: dict[uuid.UUID, asyncpg.Record],
    owners: dict[int, uuid.UUID],
) -> dict[uuid.UUID, str]:
    """Records the batch id of messages that reports found by ``client_reference`` before
    the dispatcher recorded it (``batch_adoption``); returns their statuses now. A later
    report in the batch that names another batch id for such a message is dropped from
    ``owners``, to be kept unmatched like any report of an unknown batch."""
    adopted: dict[uuid.UUID, str] = {}
    for index in sorted(owners):
        message_id = owners[index]
        if messages[message_id]["sinch_batch_id"] is not None:
            continue
        if adopted.setdefault(message_id, reports[index].batch_id) != reports[index].batch_id:
            del owners[index]
    routes = {message_id: _callback_route(messages[message_id]) for message_id in adopted}
    return await adopt_batches(connection, adopted, routes)


async def _apply_all(
    connection: Connection,
    messages: dict[uuid.UUID, asyncpg.Record],
    statuses: dict[uuid.UUID, str],
    queue: Sequence[tuple[uuid.UUID, IncomingReport, datetime | None, int | None]],
) -> list[tuple[int | None, AppliedReport]]:
    """Applies the queued reports (message, report, when it was kept, index in the caller's
    batch, None for a kept one) to their locked messages in order and writes the outcome;
    returns each report's index and result, in queue order. ``statuses`` are messages'
    statuses changed in this transaction since they were locked."""
    ledgers = await _load_ledgers(connection, messages, statuses, [(m, r) for m, r, _, _ in queue])
    pending: list[PendingReport] = []
    events: list[EventRow] = []
    for message_id, report, kept_at, _ in queue:
        applied, event = ledgers[message_id].apply(report, kept_at)
        pending.append(applied)
        events.append(event)
    # A report twice in one batch: the first stores the event, the second is a duplicate.
    first: set[tuple[uuid.UUID, str]] = set()
    unique: list[EventRow] = []
    for event in events:
        key = (event.message_id, event.dedupe_key)
        if key not in first:
            first.add(key)
            unique.append(event)
    stored = await _write(connection, ledgers.values(), unique)
    results: list[tuple[int | None, AppliedReport]] = []
    for (_, _, _, index), applied in zip(queue, pending, strict=True):
        key = (applied.message_id, applied.report.dedupe_key)
        was_stored = key in stored
        stored.discard(key)
        results.append((index, applied.outcome(was_stored)))
        if applied.route is not None and applied.changes:
            # Same transaction as the change itself: a committed change always has its events.
            await enqueue_status_events(
                connection,
                message_id=applied.message_id,
                route=applied.route,
                message_status=applied.message_status,
                changes=applied.changes,
            )
    return results


async def _load_ledgers(
    connection: Connection,
    messages: dict[uuid.UUID, asyncpg.Record],
    statuses: dict[uuid.UUID, str],
    reports: Sequence[tuple[uuid.UUID, IncomingReport]],
) -> dict[uuid.UUID, Ledger]:
    batch_wide = {
        message_id
        for message_id, report in reports
        if report.summary_statuses or any(u.msisdn is None for u in report.updates)
    }
    named = sorted(
        {
            (message_id, update.msisdn)
            for message_id, report in reports
            if message_id not in batch_wide
            for update in report.updates
            if update.msisdn is not None
        }
    )
    wide_named = {
        (message_id, update.msisdn)
        for message_id, report in reports
        if message_id in batch_wide
        for update in report.updates
        if update.msisdn is not None
    }
    # A batch-wide message loads its sent recipients; one it also names is loaded even if
    # it was refused before sending.
    named.extend(sorted(wide_named))
    rows = await connection.fetch(
        _LOAD_STATES,
        [message_id for message_id, _ in named],
        [msisdn for _, msisdn in named],
        sorted(batch_wide),
        _NOT_SENT,
        sorted(messages),
    )
    states: dict[uuid.UUID, dict[str, RecipientState]] = {m: {} for m in messages}
    sent: dict[uuid.UUID, list[str]] = {m: [] for m in messages}
    counts: dict[uuid.UUID, Counter[RecipientStatus]] = {m: Counter() for m in messages}
    for row in rows:
        message_id = row["message_id"]
        if row["msisdn"] is None:
            counts[message_id][RecipientStatus(row["status"])] += row["how_many"]
            continue
        states[message_id][row["msisdn"]] = _state(row)
        if message_id in batch_wide and row["status"] != _NOT_SENT:
            sent[message_id].append(row["msisdn"])
    return {
        message_id: Ledger(
            message_id=message_id,
            status=statuses.get(message_id, message["status"]),
            route=_callback_route(message),
            states=states[message_id],
            sent=sorted(set(sent[message_id])),
            counts=counts[message_id],
            submitted_at=message["submitted_at"],
        )
        for message_id, message in messages.items()
    }


async def _write(
    connection: Connection, ledgers: Iterable[Ledger], events: Sequence[EventRow]
) -> set[tuple[uuid.UUID, str]]:
    """Writes the events, changed recipients and moved statuses; returns the events stored."""
    recipients: list[tuple[uuid.UUID, str, RecipientState]] = []
    statuses: list[tuple[uuid.UUID, str]] = []
    for ledger in ledgers:
        recipients.extend((ledger.message_id, m, s) for m, s in ledger.recipient_writes())
        if ledger.status != ledger.loaded_status:
            statuses.append((ledger.message_id, ledger.status))
    rows = await connection.fetch(
        _WRITE,
        [event.message_id for event in events],
        [event.recipient for event in events],
        [event.status for event in events],
        [event.code for event in events],
        [event.detail for event in events],
        [event.dedupe_key for event in events],
        [message_id for message_id, _, _ in recipients],
        [msisdn for _, msisdn, _ in recipients],
        [state.status.value for _, _, state in recipients],
        [state.code for _, _, state in recipients],
        [state.at for _, _, state in recipients],
        [state.operator_status_at for _, _, state in recipients],
        [state.operator for _, _, state in recipients],
        [message_id for message_id, _ in statuses],
        [status for _, status in statuses],
    )
    return {(row["message_id"], row["dedupe_key"]) for row in rows}


async def _keep(connection: Connection, reports: Sequence[IncomingReport]) -> set[str]:
    """Keeps reports that match no message yet; returns the dedupe keys newly kept."""
    rows = await connection.fetch(
        _KEEP,
        [report.batch_id for report in reports],
        [report.client_reference for report in reports],
        [report.report_type for report in reports],
        [report.dedupe_key for report in reports],
        [report.payload for report in reports],
        [_report_json(report) for report in reports],
    )
    return {row["dedupe_key"] for row in rows}


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
        "source": report.source,
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
        source=stored.get("source"),
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _datetime(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)
