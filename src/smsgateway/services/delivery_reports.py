"""Receive Sinch's delivery reports: read them into the gateway's terms and store them once.

Rules (also in the README):

- **What is stored.** Every report that is a JSON object is stored before the answer: applied
  to its message as an event, or kept in ``unmatched_report``. Fields Sinch adds are kept,
  since the payload is stored as received.
- **Unknown ``type`` or missing fields.** Kept as ``unprocessable`` and answered 200: Sinch
  would not retry a 4xx either, and a 5xx would make it retry for almost a day to no end.
  Only a body that is not a JSON object is refused (400): there is nothing to keep.
- **Sinch's ``Queued``** is read as ``submitted``: the message is queued *at Sinch*, handed
  over, which is our ``submitted`` stage; its code (400) and ``at`` are kept.
- **Summary mode** (a batch report without recipients): one status for the whole batch is
  applied to every recipient handed to Sinch; several statuses cannot be told apart per
  recipient, so only the message's status is derived from them (the recipients keep theirs,
  and the event keeps the counts). Use ``full`` or ``per_recipient`` for per-recipient detail.
- **Order and repetition** are resolved by ``domain.status.merge`` (a later ``at`` wins
  between finals, an intermediate never replaces a final); a report delivered twice is a
  duplicate and changes nothing.
- **Early reports** match by ``client_reference`` (our message id) or are kept and applied
  when the dispatcher records the batch id; a report for a batch the gateway never sent is kept
  too, and counted.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import asyncpg
from pydantic import ValidationError

from smsgateway.domain.phone import normalise_address
from smsgateway.domain.status import (
    RecipientReport,
    RecipientStatus,
    parse_wire_status,
)
from smsgateway.observability import report_metrics as metrics
from smsgateway.services.delivery_timing import observe_report_timing
from smsgateway.sinch.models import (
    DELIVERY_REPORT_ADAPTER,
    BatchDeliveryReport,
    RecipientDeliveryReport,
)
from smsgateway.store import reports as store
from smsgateway.store.batching import BatchCall
from smsgateway.store.errors import UNAVAILABLE_ERRORS, DatabaseUnavailableError
from smsgateway.store.reports import (
    AppliedReport,
    IncomingReport,
    RecipientUpdate,
    ReportOutcome,
)

if TYPE_CHECKING:
    from smsgateway.store.pool import Connection

ACQUIRE_TIMEOUT_SECONDS = 1.0

_KNOWN_TYPES: Final = frozenset(
    {
        "delivery_report_sms",
        "delivery_report_mms",
        "recipient_delivery_report_sms",
        "recipient_delivery_report_mms",
    }
)
_KNOWN_STATUSES: Final = frozenset(
    {
        "queued",
        "dispatched",
        "delivered",
        "failed",
        "rejected",
        "aborted",
        "cancelled",
        "expired",
        "deleted",
        "unknown",
    }
)

# Postgres could not take the report now, but may in a moment: Sinch should retry (503).
_TRANSIENT_ERRORS: Final[tuple[type[BaseException], ...]] = (
    *UNAVAILABLE_ERRORS,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.QueryCanceledError,
    asyncpg.TooManyConnectionsError,
)


_UNSTORABLE: Final = re.compile("[\x00\ud800-\udfff]")


class UnreadablePayloadError(Exception):
    """The callback body is not a JSON object: nothing in it can ever be processed."""


@dataclass(frozen=True, slots=True)
class ReportReceipt:
    """What the gateway did with one report; ``changed`` counts recipients whose state moved."""

    outcome: ReportOutcome
    message_id: uuid.UUID | None = None
    changed: int = 0


def read_json_object(body: bytes) -> dict[str, Any]:
    """``body`` as a JSON object; raises ``UnreadablePayloadError`` for anything else."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise UnreadablePayloadError("The body is not valid JSON.") from exc
    if not isinstance(document, dict):
        raise UnreadablePayloadError("The body is JSON, but not an object.")
    storable: dict[str, Any] = _storable(document)
    return storable


def _storable(value: Any) -> Any:
    """``value`` with every U+0000 and lone surrogate replaced by U+FFFD.

    JSON may carry both, but Postgres's jsonb refuses U+0000 and UTF-8 cannot encode a lone
    surrogate: left in, they would make a report impossible to store, and it must be stored.
    """
    if isinstance(value, str):
        # json.loads has already joined valid surrogate pairs: any left are lone.
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value


def payload_digest(document: dict[str, Any]) -> str:
    """A digest of a payload that does not depend on key order or whitespace."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def normalise_msisdn(raw: str) -> str:
    """A number as Sinch writes it in callbacks (``+`` sometimes missing) in E.164 form
    (``phone.normalise_address``: the one rule for every address Sinch sends us)."""
    return normalise_address(raw)


def as_recipient_status(raw: str) -> RecipientStatus:
    """Sinch's wire status in our terms; Sinch's ``Queued`` is our ``submitted`` stage."""
    status = parse_wire_status(raw).status
    return RecipientStatus.SUBMITTED if status is RecipientStatus.QUEUED else status


def incoming_report(
    report: BatchDeliveryReport | RecipientDeliveryReport, payload: dict[str, Any], digest: str
) -> IncomingReport:
    """A parsed report in the store's terms (rules in the module docstring)."""
    if isinstance(report, RecipientDeliveryReport):
        msisdn = normalise_msisdn(report.recipient)
        status = as_recipient_status(report.status)
        update = RecipientUpdate(
            msisdn,
            RecipientReport(
                status,
                report.code,
                _aware(report.at),
                _aware(report.operator_status_at),
                report.operator,
            ),
        )
        return IncomingReport(
            batch_id=report.batch_id,
            message_ref=_message_ref(report.client_reference),
            client_reference=report.client_reference,
            report_type=report.type,
            payload=payload,
            dedupe_key=digest,
            updates=(update,),
            event_recipient=msisdn,
            event_status=status,
            event_code=report.code,
        )
    updates: list[RecipientUpdate] = []
    anonymous: list[tuple[RecipientStatus, int]] = []
    for group in report.statuses:
        status = as_recipient_status(group.status)
        if group.recipients:
            updates.extend(
                RecipientUpdate(normalise_msisdn(recipient), RecipientReport(status, group.code))
                for recipient in group.recipients
            )
        elif group.count > 0:
            anonymous.append((status, group.code))
    summary: tuple[RecipientStatus, ...] = ()
    if not updates and len({status for status, _ in anonymous}) == 1:
        # One status for the whole batch: it is every recipient's.
        status, code = anonymous[0]
        codes = {code for _, code in anonymous}
        updates.append(
            RecipientUpdate(None, RecipientReport(status, code if len(codes) == 1 else None))
        )
    elif not updates:
        summary = tuple(status for status, _ in anonymous)
    return IncomingReport(
        batch_id=report.batch_id,
        message_ref=_message_ref(report.client_reference),
        client_reference=report.client_reference,
        report_type=report.type,
        payload=payload,
        dedupe_key=digest,
        updates=tuple(updates),
        summary_statuses=summary,
    )


class DeliveryReportService:
    """Stores and applies delivery reports; one per process.

    Concurrent reports are applied together, a batch per transaction (group commit): each
    caller still gets its own report's outcome, and only once it is committed.
    """

    def __init__(self, pool: asyncpg.Pool, *, max_batch: int = 256, linger: float = 0.0) -> None:
        self._pool = pool
        # One batch in flight at a time: reports arriving meanwhile go together in the next,
        # so batches are larger and each report costs Postgres less (bench_reports.py, back to
        # back: 3,602-3,744 reports/s with one, 3,330-3,452 with two).
        # A report is waited for by Sinch alone, so a batch may linger for company
        # (store.batching): each batch is five round trips (a transaction), whatever its size;
        # at ~1,000 reports/s, 5 ms made batches of ~4 reports batches of ~24.
        self._batches: BatchCall[IncomingReport, AppliedReport | Exception] = BatchCall(
            pool,
            _record_batch,
            max_batch=max_batch,
            max_concurrent_batches=1,
            acquire_timeout=ACQUIRE_TIMEOUT_SECONDS,
            linger=linger,
        )

    async def receive(self, body: bytes) -> ReportReceipt:
        """Stores the report in ``body`` (raw bytes as received) and applies it.

        Raises ``UnreadablePayloadError`` for a body that is not a JSON object, and
        ``DatabaseUnavailableError`` when Postgres cannot take it now (Sinch should retry).
        """
        return await self.receive_payload(read_json_object(body))

    async def receive_payload(self, payload: dict[str, Any]) -> ReportReceipt:
        """``receive`` for a body already read (``read_json_object``)."""
        digest = payload_digest(payload)
        try:
            report = DELIVERY_REPORT_ADAPTER.validate_python(payload)
        except ValidationError:
            return await self._keep_unprocessable(payload, digest)
        incoming = incoming_report(report, payload, digest)
        try:
            applied = await self._batches.call(incoming)
        except _TRANSIENT_ERRORS as exc:
            raise DatabaseUnavailableError(str(exc) or type(exc).__name__) from exc
        if isinstance(applied, Exception):
            raise applied
        _count(report, applied)
        observe_report_timing((applied,), datetime.now(UTC))
        return ReportReceipt(applied.outcome, applied.message_id, len(applied.changes))

    async def _keep_unprocessable(self, payload: dict[str, Any], digest: str) -> ReportReceipt:
        try:
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
                applied = await store.record_unprocessable(
                    connection,
                    payload,
                    digest,
                    report_type=_text(payload.get("type")),
                    batch_id=_text(payload.get("batch_id")),
                    client_reference=_text(payload.get("client_reference")),
                )
        except _TRANSIENT_ERRORS as exc:
            raise DatabaseUnavailableError(str(exc) or type(exc).__name__) from exc
        metrics.REPORTS_RECEIVED.labels("other", "other", applied.outcome.value).inc()
        return ReportReceipt(applied.outcome)


async def _record_batch(
    connection: Connection, reports: list[IncomingReport]
) -> list[AppliedReport | Exception]:
    """Applies a batch in one transaction; should the database refuse it for a reason other
    than being unavailable, applies each report alone, so that one report the database cannot
    take fails alone and the others of its batch are still stored."""
    try:
        return list(await store.record_reports(connection, reports))
    except _TRANSIENT_ERRORS:
        raise
    except Exception:
        if len(reports) == 1:
            raise
    results: list[AppliedReport | Exception] = []
    for report in reports:
        try:
            results.append(await store.record_report(connection, report))
        except _TRANSIENT_ERRORS:
            raise
        except Exception as exc:  # handed to that report's caller, who answers 500
            results.append(exc)
    return results


def _count(report: BatchDeliveryReport | RecipientDeliveryReport, applied: AppliedReport) -> None:
    kind = report.type if report.type in _KNOWN_TYPES else "other"
    if isinstance(report, RecipientDeliveryReport):
        statuses = [report.status]
    else:
        statuses = [group.status for group in report.statuses] or ["none"]
    for raw in statuses:
        status = raw.strip().lower()
        label = status if status in _KNOWN_STATUSES or status == "none" else "other"
        metrics.REPORTS_RECEIVED.labels(kind, label, applied.outcome.value).inc()
    if applied.outcome is ReportOutcome.UNKNOWN_BATCH:
        metrics.REPORTS_UNKNOWN_BATCH.inc()
    if applied.late:
        metrics.REPORTS_APPLIED_LATE.inc()
    for reason in applied.refusals.values():
        if reason.value != "duplicate":
            metrics.STATUS_REGRESSIONS_REFUSED.labels(reason.value).inc()


def _message_ref(client_reference: str | None) -> uuid.UUID | None:
    """Our message id, which the dispatcher sends as ``client_reference``; None otherwise."""
    if client_reference is None:
        return None
    try:
        return uuid.UUID(client_reference)
    except ValueError:
        return None


def _aware(value: datetime | None) -> datetime | None:
    # Sinch writes UTC with a "Z"; a timestamp without any offset is read as UTC too.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
