"""Messages as the dispatcher sees them: what to send, and the outcome of handing it to Sinch.

Each outcome is one transaction over ``sms_log``, ``sms_recipient``, ``sms_event`` and the
outbox row. Outcomes that end or postpone the work (rejected, expired, failed, opted out, retry)
apply only while the claim still holds; a batch Sinch accepted is recorded even from a lost
claim, because it exists at Sinch whatever the outbox says. Statuses only move forward from
``queued`` or ``scheduled``: a delivery report that arrived early (by client_reference) is never
overwritten.

- **Opt-outs** are checked again when the message is loaded for sending, by the accept path's
  rule (``opt_outs.blocks``: a global opt-out, the message's sender's, or its tenant's).
  Those recipients are marked ``opted_out`` and left out of the batch; a message with nobody
  left to send to ends with the status derived from its recipients (``rejected`` when all
  opted out, as at accept), unsent.
- **Status callbacks.** Every recipient status an outcome changes queues a status callback
  event (``callbacks.enqueue_gateway_changes``) in the same transaction, to the route loaded
  with the message (``OutgoingMessage.callback_route``). Without a route, recording a batch id
  stays one statement.
- **Reconciliation.** Recording a batch id also adds the message to ``awaiting_report``
  (``reconcile_after`` seconds from now), in the same statement, when the message asked for
  delivery reports and the caller passed ``reconcile_after`` (the gateway always does, even
  with SMSGW_RECONCILE=off, so that switching it on later reconciles what was sent
  meanwhile); ``store.reconciliation`` works from there.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import asyncpg

from smsgateway.domain.message_events import MessageEventKind, ended_with
from smsgateway.domain.status import RecipientStatus, derive_message_status
from smsgateway.store import outbox
from smsgateway.store.callbacks import (
    CallbackRoute,
    callback_route,
    enqueue_gateway_changes,
    route_columns,
)
from smsgateway.store.opt_outs import blocks
from smsgateway.store.protection import release_charge, release_share

if TYPE_CHECKING:
    from smsgateway.store.outbox import Claim
    from smsgateway.store.pool import Connection

FinalStatus = Literal["rejected", "expired", "failed"]

PENDING_STATUSES = ("queued", "scheduled")


def _move_pending(message_id: str, status: str, narrower: str = "") -> str:
    """An ``UPDATE`` moving the message's pending recipients to ``status`` that returns each
    one's position, number and previous status (the self-join is how an UPDATE sees the row as
    it was)."""
    return f"""
    UPDATE sms_recipient AS r SET status = {status}, updated_at = now()
    FROM sms_recipient AS was
    WHERE r.message_id = {message_id} AND r.status IN ('queued', 'scheduled') {narrower}
      AND was.message_id = r.message_id AND was.msisdn = r.msisdn
    RETURNING r.position, r.msisdn, was.status AS previous"""


# The recipients a statement's ``recipient`` CTE moved, in order, as two parallel arrays.
_MOVED_COLUMNS = """
       ARRAY(SELECT msisdn FROM recipient ORDER BY position) AS moved,
       ARRAY(SELECT previous FROM recipient ORDER BY position) AS moved_from
"""


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A message to hand to Sinch. ``recipients`` are those still pending, in order;
    ``opted_out`` those of them who have opted out since the message was accepted."""

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
    opted_out: tuple[str, ...] = ()
    callback_route: CallbackRoute | None = None
    # text, media (MMS) or binary; ``content`` what a non-text batch needs besides body.
    kind: str = "text"
    content: dict[str, Any] | None = None

    @property
    def is_pending(self) -> bool:
        """Still to be sent: neither handed over nor ended (e.g. cancelled) meanwhile."""
        return self.status in PENDING_STATUSES and self.sinch_batch_id is None

    @property
    def sendable(self) -> tuple[str, ...]:
        """The pending recipients who have not opted out: the batch's ``to``."""
        if not self.opted_out:
            return self.recipients
        refused = set(self.opted_out)
        return tuple(msisdn for msisdn in self.recipients if msisdn not in refused)


@dataclass(frozen=True, slots=True)
class OptedOut:
    """What ``record_opted_out`` did: the recipients it marked, and the status the message
    ended with when nobody was left to send to (None: the rest are still to be sent)."""

    recipients: tuple[str, ...]
    ended_as: str | None


# The opt-out probe rides on the load: no extra round trip for a message nobody opted out of.
_LOAD_COLUMNS = f"""
m.id, m.tenant, m.status, m.sender, m.body, m.segment_count, m.delivery_report,
m.send_at, m.expire_at, m.parameters, m.max_segments, m.sinch_batch_id, m.created_at,
m.kind, m.content, {route_columns("m")},
coalesce(p.recipients, '{{}}') AS recipients, coalesce(p.opted_out, '{{}}') AS opted_out
"""
_PENDING_RECIPIENTS = f"""
LATERAL (
    SELECT array_agg(r.msisdn ORDER BY r.position) AS recipients,
           array_agg(r.msisdn ORDER BY r.position) FILTER (WHERE EXISTS (
               SELECT 1 FROM opt_out AS o WHERE {blocks("o", "r.msisdn", "m.tenant", "m.sender")}
           )) AS opted_out
    FROM sms_recipient AS r
    WHERE r.message_id = m.id AND r.status IN ('queued', 'scheduled')
) AS p
"""
_LOAD = f"""
SELECT {_LOAD_COLUMNS}
FROM sms_log AS m
CROSS JOIN {_PENDING_RECIPIENTS}
WHERE m.id = ANY($1::uuid[])
"""

# The claim and the load in one round trip. The messages are read in the statement's
# snapshot, taken before the claim's row locks: as fresh as a load right after the claim,
# since whatever changes a queued message (a cancel, a retry) takes its outbox row first,
# and a row changed meanwhile is re-checked by the claim and not taken.
_CLAIM_AND_LOAD = f"""
{outbox.CLAIM_DUE_CTES}
SELECT c.message_id, c.claim_token, c.claimed_by, c.attempts, c.due_at, {_LOAD_COLUMNS}
FROM claimed AS c
LEFT JOIN sms_log AS m ON m.id = c.message_id
LEFT JOIN {_PENDING_RECIPIENTS} ON true
"""


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """A claim and its message as the claim found it (None: the message is gone)."""

    claim: Claim
    message: OutgoingMessage | None


async def claim_and_load(
    connection: Connection, limit: int, lease_seconds: float, worker_id: str
) -> list[ClaimedMessage]:
    """``outbox.claim_due`` and ``load_outgoing_many`` of what it claimed, in one statement."""
    rows = await connection.fetch(_CLAIM_AND_LOAD, limit, float(lease_seconds), worker_id)
    claimed = time.monotonic()
    return [
        ClaimedMessage(
            outbox.claim_from(row, claimed), None if row["id"] is None else _outgoing(row)
        )
        for row in rows
    ]


async def load_outgoing(connection: Connection, message_id: uuid.UUID) -> OutgoingMessage | None:
    return (await load_outgoing_many(connection, [message_id])).get(message_id)


async def load_outgoing_many(
    connection: Connection, message_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, OutgoingMessage]:
    """The messages among ``message_ids`` that exist, by id (concurrent sends load together)."""
    rows = await connection.fetch(_LOAD, list(message_ids))
    return {row["id"]: _outgoing(row) for row in rows}


async def record_submitted(
    connection: Connection,
    claim: Claim,
    *,
    batch_id: str,
    resolved_by_lookup: bool,
    route: CallbackRoute | None,
    reconcile_after: float | None = None,
) -> bool:
    """Records Sinch's batch id and marks message and pending recipients submitted (queuing
    their status callbacks to ``route``); with ``reconcile_after`` (seconds), also schedules
    the first reconciliation check of its delivery reports.

    Returns whether the outbox row was still ours (and is now gone). Reports that arrived
    before the batch id was known are kept: once this has returned (committed), the caller
    applies them (``reports.kept_batches``, ``reports.apply_unmatched``).
    """
    detail = _submitted_detail(claim, batch_id, resolved_by_lookup)
    arguments = (claim.message_id, batch_id, claim.claim_token, detail, reconcile_after)
    if route is None:
        row = await connection.fetchrow(_RECORD_SUBMITTED, *arguments)
    else:
        async with connection.transaction():
            row = await connection.fetchrow(_RECORD_SUBMITTED, *arguments)
            assert row is not None
            await _queue_callbacks(connection, claim, route, row, RecipientStatus.SUBMITTED)
    assert row is not None
    return bool(row["completed"])


@dataclass(frozen=True, slots=True)
class Submission:
    """A batch Sinch accepted, to record for a message with no status callbacks to queue."""

    claim: Claim
    batch_id: str
    resolved_by_lookup: bool
    reconcile_after: float | None = None


async def record_submitted_many(
    connection: Connection, submissions: Sequence[Submission]
) -> list[bool]:
    """``record_submitted`` for messages without a callback route, many in one statement
    (concurrent sends share it); returns, for each, whether its outbox row was still ours."""
    rows = await connection.fetch(
        _RECORD_SUBMITTED_MANY,
        [item.claim.message_id for item in submissions],
        [item.batch_id for item in submissions],
        [item.claim.claim_token for item in submissions],
        [
            _submitted_detail(item.claim, item.batch_id, item.resolved_by_lookup)
            for item in submissions
        ],
        [item.reconcile_after for item in submissions],
    )
    completed = {row["message_id"] for row in rows}
    return [item.claim.message_id in completed for item in submissions]


def _submitted_detail(claim: Claim, batch_id: str, resolved_by_lookup: bool) -> dict[str, Any]:
    return {
        "batch_id": batch_id,
        "attempt": claim.attempts,
        "worker": claim.claimed_by,
        "resolved_by_lookup": resolved_by_lookup,
    }


# When Sinch stops trying to deliver: the batch's expire_at, by default and at most 3 days after
# the send (the dispatcher sends at once, so "now" is the send time).
_EXPIRES_AT = "least(coalesce({expire_at}, 'infinity'), now() + interval '3 days')"

# _RECORD_SUBMITTED for many messages at once, without the moved recipients (no callbacks).
# The messages are locked in id order, as a batch of delivery reports locks them.
_RECORD_SUBMITTED_MANY = f"""
WITH input AS (
    SELECT i.message_id, i.batch_id, i.claim_token, i.detail, i.reconcile_after
    FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::jsonb[], $5::float8[])
        AS i(message_id, batch_id, claim_token, detail, reconcile_after)
), locked AS (
    SELECT s.id, i.batch_id, s.sinch_batch_id AS had_batch_id, i.reconcile_after,
           s.delivery_report, s.expire_at
    FROM sms_log AS s JOIN input AS i ON i.message_id = s.id
    ORDER BY s.id
    FOR UPDATE OF s
), awaiting AS (
    INSERT INTO awaiting_report (message_id, batch_id, due_at, expires_at)
    SELECT l.id, l.batch_id, now() + make_interval(secs => l.reconcile_after),
           {_EXPIRES_AT.format(expire_at="l.expire_at")}
    FROM locked AS l
    WHERE l.reconcile_after IS NOT NULL AND l.delivery_report <> 'none'
    ON CONFLICT (message_id) DO NOTHING
), message AS (
    UPDATE sms_log AS s
    SET sinch_batch_id = l.batch_id, submitted_at = coalesce(s.submitted_at, now()),
        status = CASE WHEN s.status IN ('queued', 'scheduled') THEN 'submitted' ELSE s.status END,
        updated_at = now()
    FROM locked AS l
    WHERE s.id = l.id AND (s.sinch_batch_id IS NULL OR s.sinch_batch_id = l.batch_id)
), recipient AS (
    UPDATE sms_recipient AS r SET status = 'submitted', updated_at = now()
    FROM locked AS l
    WHERE r.message_id = l.id AND r.status IN ('queued', 'scheduled')
), event AS (
    -- None when a delivery report recorded the batch first (store.batch_adoption).
    INSERT INTO sms_event (message_id, kind, status, detail)
    SELECT i.message_id, '{MessageEventKind.SUBMITTED}', 'submitted', i.detail
    FROM input AS i JOIN locked AS l ON l.id = i.message_id
    WHERE l.had_batch_id IS NULL
)
DELETE FROM outbox AS o USING input AS i
WHERE o.message_id = i.message_id AND o.claim_token = i.claim_token
RETURNING o.message_id
"""


# One statement (one round trip; alone in its transaction, one commit, when no callbacks are
# queued): every data-modifying CTE runs. CTEs run in no set order, so the message row is
# locked first, explicitly, and the updates hang off it: the same order (message, then
# recipients) as applying a delivery report and cancelling, which an early report racing this
# statement would otherwise turn into a deadlock. It returns the recipients it moved, but
# cannot queue their callbacks itself: callback sequence numbers must be read after the lock
# is held, and this statement's snapshot predates any wait for it.
_RECORD_SUBMITTED = f"""
WITH locked AS (
    SELECT id, status, sinch_batch_id AS had_batch_id, delivery_report, expire_at
    FROM sms_log WHERE id = $1 FOR UPDATE
), awaiting AS (
    INSERT INTO awaiting_report (message_id, batch_id, due_at, expires_at)
    SELECT id, $2, now() + make_interval(secs => $5::float8),
           {_EXPIRES_AT.format(expire_at="expire_at")}
    FROM locked
    WHERE $5::float8 IS NOT NULL AND delivery_report <> 'none'
    ON CONFLICT (message_id) DO NOTHING
), message AS (
    UPDATE sms_log SET sinch_batch_id = $2, submitted_at = coalesce(submitted_at, now()),
        status = CASE WHEN status IN ('queued', 'scheduled') THEN 'submitted' ELSE status END,
        updated_at = now()
    WHERE id = (SELECT id FROM locked) AND (sinch_batch_id IS NULL OR sinch_batch_id = $2)
    RETURNING status
), recipient AS (
    {_move_pending("(SELECT id FROM locked)", "'submitted'")}
), event AS (
    -- None when a delivery report recorded the batch first (store.batch_adoption).
    INSERT INTO sms_event (message_id, kind, status, detail)
    SELECT $1, '{MessageEventKind.SUBMITTED}', 'submitted', $4
    FROM locked WHERE had_batch_id IS NULL
), completed AS (
    DELETE FROM outbox WHERE message_id = $1 AND claim_token = $3 RETURNING 1
)
SELECT (SELECT count(*) = 1 FROM completed) AS completed,
       coalesce((SELECT status FROM message), (SELECT status FROM locked)) AS message_status,
       {_MOVED_COLUMNS}
"""


async def record_final(
    connection: Connection,
    claim: Claim,
    *,
    status: FinalStatus,
    code: str | None,
    detail: str | None,
    event: dict[str, Any],
    route: CallbackRoute | None,
    give_back_spend: bool = False,
) -> bool:
    """Ends the message unsent (rejected, expired or failed) if the claim still holds, and
    queues a status callback to ``route`` for each pending recipient it ends.

    ``code`` and ``detail`` go to ``status_code``/``status_detail``; ``event`` is the event's
    detail. ``give_back_spend``: it certainly cost nothing (no attempt may have reached Sinch),
    so what it took from its tenant's spend caps is given back. Returns False, changing
    nothing, if the claim was lost.
    """
    async with connection.transaction():
        # The message row first, as cancel and delivery reports take it: no lock-order cycle.
        await connection.execute("SELECT 1 FROM sms_log WHERE id = $1 FOR UPDATE", claim.message_id)
        if not await outbox.complete(connection, claim.message_id, claim.claim_token):
            return False
        row = await connection.fetchrow(
            _RECORD_FINAL, claim.message_id, status, code, detail, event
        )
        assert row is not None
        if give_back_spend:
            await release_charge(connection, claim.message_id)
        await _queue_callbacks(connection, claim, route, row, RecipientStatus(status))
        return True


_RECORD_FINAL = f"""
WITH message AS (
    UPDATE sms_log SET status = $2, status_code = $3, status_detail = $4, updated_at = now()
    WHERE id = $1 AND status IN ('queued', 'scheduled')
    RETURNING status
), recipient AS (
    {_move_pending("$1", "$2")}
), event AS (
    INSERT INTO sms_event (message_id, kind, status, detail) VALUES ($1, $2, $2, $5)
)
SELECT coalesce((SELECT status FROM message), (SELECT status FROM sms_log WHERE id = $1))
           AS message_status,
       {_MOVED_COLUMNS}
"""


async def record_opted_out(
    connection: Connection,
    claim: Claim,
    msisdns: Sequence[str],
    *,
    route: CallbackRoute | None,
    event: dict[str, Any],
) -> OptedOut | None:
    """Marks those of ``msisdns`` still pending ``opted_out``, each with an ``opted_out``
    event (detail ``event``) and a status callback to ``route``, and gives back their share of
    the message's spend charge. When no recipient is left to send to, also ends the message
    with its derived status and removes its outbox row.

    Returns None, changing nothing, if the claim was lost.
    """
    async with connection.transaction():
        if not await connection.fetchval(_LOCK_HELD, claim.message_id, claim.claim_token):
            return None
        row = await connection.fetchrow(_MARK_OPTED_OUT, claim.message_id, list(msisdns), event)
        assert row is not None
        # They will never be sent to: their share of the spend caps goes back, once.
        await release_share(connection, claim.message_id, len(row["moved"]))
        message_status: str = row["message_status"]
        statuses = [RecipientStatus(status) for status in row["statuses"]]
        ended_as = None
        if not any(status.value in PENDING_STATUSES for status in statuses):
            derived = derive_message_status(statuses)
            ended_as = derived.value
            await connection.execute(
                _END_OPTED_OUT,
                claim.message_id,
                claim.claim_token,
                ended_as,
                OPTED_OUT_CODE,
                "Every recipient has opted out; nothing was sent.",
                {**event, "code": OPTED_OUT_CODE},
                ended_with(derived).value,
            )
            message_status = ended_as
        marked = _moved(row)
        await enqueue_gateway_changes(
            connection,
            message_id=claim.message_id,
            route=route,
            message_status=message_status,
            status=RecipientStatus.OPTED_OUT,
            previous=marked,
        )
        return OptedOut(tuple(msisdn for msisdn, _ in marked), ended_as)


OPTED_OUT_CODE = "opted_out"
"""``status_code`` of a message that ended unsent because every recipient opted out."""

# The message row, then the outbox row: the order record_final takes them in.
_LOCK_HELD = """
WITH message AS (
    SELECT id FROM sms_log WHERE id = $1 FOR UPDATE
), held AS (
    SELECT 1 FROM outbox
    WHERE message_id = (SELECT id FROM message) AND claim_token = $2
    FOR UPDATE
)
SELECT count(*) = 1 FROM held
"""

# ``statuses`` are every recipient's, as they are once the marked ones are opted_out (the
# statement cannot read its own writes).
_MARK_OPTED_OUT = f"""
WITH recipient AS (
    {_move_pending("$1", "'opted_out'", "AND r.msisdn = ANY($2::text[])")}
), event AS (
    INSERT INTO sms_event (message_id, recipient, kind, status, detail)
    SELECT $1::uuid, msisdn, '{MessageEventKind.OPTED_OUT}', 'opted_out', $3::jsonb
    FROM recipient ORDER BY position
)
SELECT (SELECT status FROM sms_log WHERE id = $1) AS message_status,
       {_MOVED_COLUMNS},
       ARRAY(SELECT DISTINCT CASE WHEN moved.msisdn IS NULL THEN r.status ELSE 'opted_out' END
             FROM sms_recipient AS r LEFT JOIN recipient AS moved ON moved.msisdn = r.msisdn
             WHERE r.message_id = $1) AS statuses
"""

_END_OPTED_OUT = """
WITH completed AS (
    DELETE FROM outbox WHERE message_id = $1 AND claim_token = $2
), message AS (
    UPDATE sms_log SET status = $3, status_code = $4, status_detail = $5, updated_at = now()
    WHERE id = $1 AND status IN ('queued', 'scheduled')
)
INSERT INTO sms_event (message_id, kind, status, detail) VALUES ($1, $7, $3, $6)
"""


async def record_retry(
    connection: Connection,
    claim: Claim,
    *,
    delay_seconds: float,
    error: str,
    event: dict[str, Any],
    keep_claim: bool = False,
) -> datetime | None:
    """Puts the message back in the outbox ``delay_seconds`` from now, with a ``send_retry`` event
    (``keep_claim``: see ``outbox.reschedule``).

    Returns the new due time, or None (changing nothing) if the claim was lost.
    """
    async with connection.transaction():
        due_at = await outbox.reschedule(
            connection,
            claim.message_id,
            claim.claim_token,
            delay_seconds,
            error,
            keep_claim=keep_claim,
        )
        if due_at is None:
            return None
        await _insert_event(
            connection,
            claim.message_id,
            MessageEventKind.SEND_RETRY,
            None,
            {**event, "due_at": due_at.isoformat()},
        )
        return due_at


async def _insert_event(
    connection: Connection,
    message_id: uuid.UUID,
    kind: MessageEventKind,
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


async def _queue_callbacks(
    connection: Connection,
    claim: Claim,
    route: CallbackRoute | None,
    row: asyncpg.Record,
    status: RecipientStatus,
) -> None:
    """Queues callbacks for the recipients a statement moved to ``status`` (its ``moved`` and
    ``moved_from`` columns, and the message's status after it)."""
    await enqueue_gateway_changes(
        connection,
        message_id=claim.message_id,
        route=route,
        message_status=row["message_status"],
        status=status,
        previous=_moved(row),
    )


def _moved(row: asyncpg.Record) -> list[tuple[str, str]]:
    """The ``(msisdn, previous status)`` pairs a statement with ``_MOVED_COLUMNS`` returned."""
    return list(zip(row["moved"], row["moved_from"], strict=True))


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
        opted_out=tuple(row["opted_out"]),
        callback_route=callback_route(row),
        kind=row["kind"],
        content=row["content"],
    )
