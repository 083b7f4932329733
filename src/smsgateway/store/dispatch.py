"""Messages as the dispatcher sees them: what to send, and the outcome of handing it to Sinch.

Each outcome is one transaction over ``sms_log``, ``sms_recipient``, ``sms_event`` and the
outbox row. Outcomes that end or postpone the work (rejected, expired, failed, retry) apply only
while the claim still holds; a batch Sinch accepted is recorded even from a lost claim, because
it exists at Sinch whatever the outbox says. Statuses only move forward from ``queued`` or
``scheduled``: a delivery report that arrived early (by client_reference) is never overwritten.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import asyncpg

from smsgateway.store import outbox, reports
from smsgateway.store.errors import CONNECTION_ERRORS

if TYPE_CHECKING:
    from smsgateway.store.outbox import Claim
    from smsgateway.store.pool import Connection

logger = logging.getLogger(__name__)

_REPORT_ERRORS: tuple[type[BaseException], ...] = (asyncpg.PostgresError, *CONNECTION_ERRORS)

FinalStatus = Literal["rejected", "expired", "failed"]

PENDING_STATUSES = ("queued", "scheduled")


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A message to hand to Sinch; ``recipients`` are those still pending, in order."""

    id: uuid.UUID
    tenant: str
    status: str
    sender: str | None
    body: str
    segment_count: int
    delivery_report: str
    send_at: datetime | None
    expire_at: datetime | None
    parameters: dict[str, dict[str, str]] | None
    max_segments: int | None
    sinch_batch_id: str | None
    created_at: datetime
    recipients: tuple[str, ...]

    @property
    def is_pending(self) -> bool:
        """Still to be sent: neither handed over nor ended (e.g. cancelled) meanwhile."""
        return self.status in PENDING_STATUSES and self.sinch_batch_id is None


_LOAD = """
SELECT m.id, m.tenant, m.status, m.sender, m.body, m.segment_count, m.delivery_report,
       m.send_at, m.expire_at, m.parameters, m.max_segments, m.sinch_batch_id, m.created_at,
       ARRAY(SELECT r.msisdn FROM sms_recipient AS r
             WHERE r.message_id = m.id AND r.status IN ('queued', 'scheduled')
             ORDER BY r.position) AS recipients
FROM sms_log AS m
WHERE m.id = $1
"""


async def load_outgoing(connection: Connection, message_id: uuid.UUID) -> OutgoingMessage | None:
    row = await connection.fetchrow(_LOAD, message_id)
    return None if row is None else _outgoing(row)


async def record_submitted(
    connection: Connection,
    claim: Claim,
    *,
    batch_id: str,
    resolved_by_lookup: bool,
) -> bool:
    """Records Sinch's batch id and marks message and pending recipients submitted, then
    applies the delivery reports that arrived before the batch id was known.

    Returns whether the outbox row was still ours (and is now gone).
    """
    detail = {
        "batch_id": batch_id,
        "attempt": claim.attempts,
        "worker": claim.claimed_by,
        "resolved_by_lookup": resolved_by_lookup,
    }
    completed = await connection.fetchval(
        _RECORD_SUBMITTED, claim.message_id, batch_id, claim.claim_token, detail
    )
    # After the commit, so that a delivery report kept meanwhile is found here, or finds the
    # batch id itself (store.reports). A failure here loses nothing: the reports stay kept,
    # and the batch's next report applies them.
    try:
        await reports.apply_unmatched(connection, batch_id)
    except _REPORT_ERRORS:
        logger.warning("batch %s: early delivery reports left for later", batch_id, exc_info=True)
    return bool(completed)


# One statement (one round trip, one commit): every data-modifying CTE runs. CTEs run in no
# set order, so the message row is locked first, explicitly, and the updates hang off it: the
# same order (message, then recipients) as applying a delivery report and cancelling, which
# an early report racing this statement would otherwise turn into a deadlock.
_RECORD_SUBMITTED = """
WITH locked AS (
    SELECT id FROM sms_log WHERE id = $1 FOR UPDATE
), message AS (
    UPDATE sms_log SET sinch_batch_id = $2, submitted_at = coalesce(submitted_at, now()),
        status = CASE WHEN status IN ('queued', 'scheduled') THEN 'submitted' ELSE status END,
        updated_at = now()
    WHERE id = (SELECT id FROM locked) AND (sinch_batch_id IS NULL OR sinch_batch_id = $2)
), recipient AS (
    UPDATE sms_recipient SET status = 'submitted', updated_at = now()
    WHERE message_id = (SELECT id FROM locked) AND status IN ('queued', 'scheduled')
), event AS (
    INSERT INTO sms_event (message_id, kind, status, detail)
    VALUES ($1, 'submitted', 'submitted', $4)
), completed AS (
    DELETE FROM outbox WHERE message_id = $1 AND claim_token = $3 RETURNING 1
)
SELECT count(*) = 1 FROM completed
"""


async def record_final(
    connection: Connection,
    claim: Claim,
    *,
    status: FinalStatus,
    code: str | None,
    detail: str | None,
    event: dict[str, Any],
) -> bool:
    """Ends the message unsent (rejected, expired or failed) if the claim still holds.

    ``code`` and ``detail`` go to ``status_code``/``status_detail``; ``event`` is the event's
    detail. Returns False, changing nothing, if the claim was lost.
    """
    async with connection.transaction():
        # The message row first, as cancel and delivery reports take it: no lock-order cycle.
        await connection.execute("SELECT 1 FROM sms_log WHERE id = $1 FOR UPDATE", claim.message_id)
        if not await outbox.complete(connection, claim.message_id, claim.claim_token):
            return False
        await connection.execute(
            "UPDATE sms_log SET status = $2, status_code = $3, status_detail = $4,"
            " updated_at = now() WHERE id = $1 AND status IN ('queued', 'scheduled')",
            claim.message_id,
            status,
            code,
            detail,
        )
        await connection.execute(
            "UPDATE sms_recipient SET status = $2, updated_at = now()"
            " WHERE message_id = $1 AND status IN ('queued', 'scheduled')",
            claim.message_id,
            status,
        )
        await _insert_event(connection, claim.message_id, status, status, event)
        return True


async def record_retry(
    connection: Connection,
    claim: Claim,
    *,
    delay_seconds: float,
    error: str,
    event: dict[str, Any],
) -> datetime | None:
    """Puts the message back in the outbox ``delay_seconds`` from now, with a ``send_retry`` event.

    Returns the new due time, or None (changing nothing) if the claim was lost.
    """
    async with connection.transaction():
        due_at = await outbox.reschedule(
            connection, claim.message_id, claim.claim_token, delay_seconds, error
        )
        if due_at is None:
            return None
        await _insert_event(
            connection,
            claim.message_id,
            "send_retry",
            None,
            {**event, "due_at": due_at.isoformat()},
        )
        return due_at


async def _insert_event(
    connection: Connection,
    message_id: uuid.UUID,
    kind: str,
    status: str | None,
    detail: dict[str, Any],
) -> None:
    await connection.execute(
        "INSERT INTO sms_event (message_id, kind, status, detail) VALUES ($1, $2, $3, $4)",
        message_id,
        kind,
        status,
        detail,
    )


def _outgoing(row: asyncpg.Record) -> OutgoingMessage:
    return OutgoingMessage(
        id=row["id"],
        tenant=row["tenant"],
        status=row["status"],
        sender=row["sender"],
        body=row["body"],
        segment_count=row["segment_count"],
        delivery_report=row["delivery_report"],
        send_at=row["send_at"],
        expire_at=row["expire_at"],
        parameters=row["parameters"],
        max_segments=row["max_segments"],
        sinch_batch_id=row["sinch_batch_id"],
        created_at=row["created_at"],
        recipients=tuple(row["recipients"]),
    )
