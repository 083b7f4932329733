"""Cancelling a pending message: at once when no send attempt has touched it, otherwise only
after Sinch has been asked whether an earlier attempt reached it.

An attempt whose claim has lapsed (a crash, a timeout, a reset) may have created a batch at
Sinch. Cancelling then takes the outbox row under a claim of its own, so no dispatcher sends
it meanwhile, asks Sinch by ``client_reference`` without holding a connection, and either
cancels with that claim (Sinch has no batch) or gives the row straight back to the
dispatcher, which records the batch it finds by the same lookup.

Cancelling moves the pending (queued or scheduled) recipients to ``cancelled`` and queues a
status callback for each, in the same transaction; recipients already final (opted out at
accept) keep their status. What the message took from its tenant's spend caps is given back
in that transaction too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg

from smsgateway.domain.message_events import MessageEventKind
from smsgateway.domain.status import RecipientStatus
from smsgateway.store.callbacks import callback_route, enqueue_gateway_changes, route_columns
from smsgateway.store.protection import release_charge

if TYPE_CHECKING:
    from smsgateway.store.pool import Connection

PENDING_STATUSES = ("queued", "scheduled")


class NotCancellableError(Exception):
    """The message is no longer waiting: it is being sent (``sending``), Sinch holds it
    (``submitted``, with ``batch_id``), or it has ended."""

    def __init__(self, status: str, batch_id: str | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.batch_id = batch_id


@dataclass(frozen=True, slots=True)
class CancelClaim:
    """The outbox row of a message whose earlier attempt may have reached Sinch, held by the
    cancel while it asks Sinch; ``created_at`` bounds the lookup."""

    message_id: uuid.UUID
    claim_token: uuid.UUID
    created_at: datetime


_LOCK_FOR_CANCEL = f"""
SELECT m.status, m.created_at, o.attempts,
       o.claim_token IS NOT NULL AND o.due_at > now() AS claimed,
       {route_columns("m")}
FROM sms_log AS m LEFT JOIN outbox AS o ON o.message_id = m.id
WHERE m.id = $1 AND m.tenant = $2
FOR UPDATE OF m
"""

_LOCK_CLAIMED = f"""
SELECT m.status, {route_columns("m")} FROM sms_log AS m WHERE m.id = $1 FOR UPDATE OF m
"""

# One statement: the message, its pending recipients (returned with the status they had, for
# their callbacks, in order) and the event.
_CANCEL = f"""
WITH message AS (
    UPDATE sms_log SET status = 'cancelled', updated_at = now() WHERE id = $1
), recipient AS (
    UPDATE sms_recipient AS r SET status = 'cancelled', updated_at = now()
    FROM sms_recipient AS was
    WHERE r.message_id = $1 AND r.status IN ('queued', 'scheduled')
      AND was.message_id = r.message_id AND was.msisdn = r.msisdn
    RETURNING r.position, r.msisdn, was.status AS previous
), event AS (
    INSERT INTO sms_event (message_id, kind, status, detail)
    VALUES ($1, '{MessageEventKind.CANCELLED}', 'cancelled', $2)
)
SELECT msisdn, previous FROM recipient ORDER BY position
"""

# The attempt count is left alone: the dispatcher's next claim still knows to look first.
_CLAIM_FOR_CANCEL = """
UPDATE outbox SET due_at = now() + make_interval(secs => $2), claim_token = gen_random_uuid(),
    claimed_by = $3
WHERE message_id = $1 AND (claim_token IS NULL OR due_at <= now())
RETURNING claim_token
"""


async def start_cancel(
    connection: Connection,
    tenant: str,
    message_id: uuid.UUID,
    *,
    lease_seconds: float,
    claimed_by: str,
) -> CancelClaim | bool:
    """Cancels the message if no send attempt has touched it (True), or claims its outbox row
    for a lookup at Sinch (a ``CancelClaim``); False if the tenant has no such message.

    Raises ``NotCancellableError`` when it has left the pending statuses, or is being sent now.
    """
    async with connection.transaction():
        message = await connection.fetchrow(_LOCK_FOR_CANCEL, message_id, tenant)
        if message is None:
            return False
        if message["status"] not in PENDING_STATUSES or message["attempts"] is None:
            raise NotCancellableError(message["status"])
        if message["claimed"]:
            raise NotCancellableError("sending")
        if message["attempts"] == 0:
            await connection.execute("DELETE FROM outbox WHERE message_id = $1", message_id)
            await _cancel(connection, message_id, message, looked_up=False)
            return True
        token = await connection.fetchval(
            _CLAIM_FOR_CANCEL, message_id, float(lease_seconds), claimed_by
        )
        assert token is not None  # the row is unclaimed and locked through its message
        return CancelClaim(message_id, token, message["created_at"])


async def finish_cancel(connection: Connection, claim: CancelClaim) -> None:
    """Cancels the claimed message, which Sinch was found not to hold.

    Raises ``NotCancellableError`` (changing nothing) if it left the pending statuses
    meanwhile, or the claim was lost (its lease ended and a dispatcher took the row).
    """
    refusal: str | None = None
    async with connection.transaction():
        message = await connection.fetchrow(_LOCK_CLAIMED, claim.message_id)
        assert message is not None  # messages are never deleted while in the outbox
        if message["status"] not in PENDING_STATUSES:
            await give_back(connection, claim)
            refusal = message["status"]
        elif await connection.fetchval(
            "DELETE FROM outbox WHERE message_id = $1 AND claim_token = $2 RETURNING 1",
            claim.message_id,
            claim.claim_token,
        ):
            await _cancel(connection, claim.message_id, message, looked_up=True)
        else:
            refusal = "sending"
    if refusal is not None:
        raise NotCancellableError(refusal)


async def give_back(connection: Connection, claim: CancelClaim) -> None:
    """Hands the row back to the dispatchers, due now (Sinch holds the batch, or could not be
    asked); their next claim looks the batch up and records it."""
    await connection.execute(
        "UPDATE outbox SET due_at = now(), claim_token = NULL, claimed_by = NULL"
        " WHERE message_id = $1 AND claim_token = $2",
        claim.message_id,
        claim.claim_token,
    )


async def _cancel(
    connection: Connection, message_id: uuid.UUID, message: asyncpg.Record, *, looked_up: bool
) -> None:
    detail = {"looked_up_at_sinch": True} if looked_up else {}
    cancelled = await connection.fetch(_CANCEL, message_id, detail)
    await release_charge(connection, message_id)  # never sent, so it cost nothing
    await enqueue_gateway_changes(
        connection,
        message_id=message_id,
        route=callback_route(message),
        message_status="cancelled",
        status=RecipientStatus.CANCELLED,
        previous=[(row["msisdn"], row["previous"]) for row in cancelled],
    )
