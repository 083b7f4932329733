"""Status callbacks to callers, queued in Postgres: enqueue, claim in order, record attempts.

An event is queued in the transaction that changed a recipient's status, under the message's
row lock, so a committed change always has its event, and a change applied twice queues nothing
the second time. Every status change queues one: delivery reports (``store.reports``), and the
gateway's own moves (``enqueue_gateway_changes``): handed to Sinch (``submitted``), ended unsent
(``rejected``, ``expired``, ``failed``), opted out at dispatch, and cancelled. The gateway's own
moves carry no Sinch ``code`` or times. Events go to the message's ``callback_url``, else its API
key's ``default_callback_url`` (``route_columns``); a message with neither queues nothing.

Claims work like the outbox's: ``due_at`` moves to the end of the lease and a fresh
``claim_token`` is set, so a dead worker's claim becomes due again by itself; every later write
is token-checked. Events are ordered per ``stream``: a message's id for its status events,
``tenant:<name>`` for a tenant's own events (``store.tenant_events``). Only the
lowest-``sequence`` pending event of a stream is claimable, so a stream's events are delivered
in order and a retrying event holds back the ones behind it (and only those). Hosts a worker
has no room for are left out of its claim, so one slow host cannot fill a worker's queue.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from smsgateway.domain.callback_targets import target_host
from smsgateway.domain.status import RecipientChange, RecipientState, RecipientStatus

if TYPE_CHECKING:
    import asyncpg

    from smsgateway.store.pool import Connection

EVENT_TYPE = "recipient.status_changed"


def route_columns(message: str) -> str:
    """Select-list items, on the ``sms_log`` row named ``message``, that ``callback_route``
    reads: where the message's events go, and the caller's reference."""
    return (
        f"coalesce({message}.callback_url, (SELECT k.default_callback_url FROM api_key AS k"
        f" WHERE k.id = {message}.api_key_id)) AS callback_url,"
        f" {message}.client_reference"
    )


class AttemptOutcome(StrEnum):
    """What one POST led to: the event delivered, retried later, or given up."""

    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class CallbackClaim:
    """A claimed event; ``attempts`` counts this claim, so it is 1 on the first try."""

    id: uuid.UUID
    message_id: uuid.UUID | None
    sequence: int
    url: str
    host: str
    payload: dict[str, Any]
    attempts: int
    claim_token: uuid.UUID
    created_at: datetime
    queued_at: datetime


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One POST: ``status_code`` is None when no answer came (``error`` says why)."""

    outcome: AttemptOutcome
    status_code: int | None
    error: str | None
    duration_ms: float
    attempted_at: datetime
    retry_in_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class CallbackAttempt:
    attempt: int
    outcome: str
    status_code: int | None
    error: str | None
    duration_ms: float
    attempted_at: datetime


@dataclass(frozen=True, slots=True)
class CallbackEvent:
    """An event as stored, with its attempts oldest first."""

    id: uuid.UUID
    message_id: uuid.UUID | None
    sequence: int
    url: str
    status: str
    attempts: int
    replays: int
    due_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    failed_at: datetime | None
    payload: dict[str, Any]
    attempt_log: tuple[CallbackAttempt, ...]


@dataclass(frozen=True, slots=True)
class CallbackRoute:
    """Where a message's events go (its own URL, else its API key's default) and the
    caller's reference to put in them."""

    url: str
    client_reference: str | None


def callback_route(row: asyncpg.Record) -> CallbackRoute | None:
    """The route of a row selected with ``route_columns``; None when events go nowhere."""
    url: str | None = row["callback_url"]
    return None if url is None else CallbackRoute(url, row["client_reference"])


class ReplayRefusal(StrEnum):
    NOT_FOUND = "not_found"
    PENDING = "pending"


# The message's row lock (held by the caller) serialises the max(sequence) read per message.
_ENQUEUE = """
INSERT INTO callback_event (id, message_id, stream, sequence, url, host, payload)
SELECT u.id, $1::uuid, $1::uuid::text, base.sequence + u.ordinality, $2, $3,
       u.payload::jsonb || jsonb_build_object(
           'id', u.id, 'sequence', base.sequence + u.ordinality, 'created_at', now())
FROM (SELECT coalesce(max(sequence), 0) AS sequence
      FROM callback_event WHERE stream = $1::uuid::text) AS base,
     unnest($4::uuid[], $5::text[]) WITH ORDINALITY AS u(id, payload, ordinality)
"""

# The NOT EXISTS probe reads committed rows without locking them: an earlier event that another
# worker is holding is still pending, so the later one stays unclaimable.
_CLAIM_DUE = """
WITH due AS (
    SELECT e.id
    FROM callback_event AS e
    WHERE e.status = 'pending' AND e.due_at <= now() AND e.host <> ALL($4::text[])
      AND NOT EXISTS (SELECT 1 FROM callback_event AS p
                      WHERE p.stream = e.stream AND p.status = 'pending'
                        AND p.sequence < e.sequence)
    ORDER BY e.due_at
    LIMIT $1
    FOR UPDATE OF e SKIP LOCKED
)
UPDATE callback_event AS c
SET due_at = now() + make_interval(secs => $2),
    claim_token = gen_random_uuid(),
    claimed_by = $3,
    attempts = c.attempts + 1
FROM due
WHERE c.id = due.id
RETURNING c.id, c.message_id, c.sequence, c.url, c.host, c.payload, c.attempts, c.claim_token,
          c.created_at, c.queued_at
"""

# The attempt is logged even when the claim was lost meanwhile: the POST did happen.
_RECORD_ATTEMPT = """
WITH attempt AS (
    INSERT INTO callback_attempt
        (event_id, attempt, outcome, status_code, error, duration_ms, worker, attempted_at)
    VALUES ($1, $3, $4, $5, $6, $7, $8, $9)
), event AS (
    UPDATE callback_event
    SET status = CASE $4 WHEN 'retry' THEN 'pending' ELSE $4 END,
        due_at = CASE $4 WHEN 'retry' THEN now() + make_interval(secs => $10) ELSE due_at END,
        delivered_at = CASE $4 WHEN 'delivered' THEN now() END,
        failed_at = CASE $4 WHEN 'failed' THEN now() END,
        last_status_code = $5, last_error = $6, claim_token = NULL, claimed_by = NULL
    WHERE id = $1 AND claim_token = $2
    RETURNING 1
)
SELECT count(*) FROM event
"""

_RELEASE = """
WITH released AS (
    UPDATE callback_event AS e
    SET due_at = now(), claim_token = NULL, claimed_by = NULL,
        attempts = greatest(e.attempts - 1, 0)
    FROM unnest($1::uuid[], $2::uuid[]) AS c(id, claim_token)
    WHERE e.id = c.id AND e.claim_token = c.claim_token
    RETURNING 1
)
-- Another worker may take them at once (channel: notifications.CALLBACK_CHANNEL).
SELECT (SELECT count(*) FROM released), pg_notify('smsgw_callback_due', '')
"""

# One row per event (or a single row of NULLs when the message has none); no row at all when
# the message is not the tenant's.
_LIST = """
SELECT m.id AS owner, e.id, e.message_id, e.sequence, e.url, e.status, e.attempts, e.replays,
       e.due_at, e.last_status_code, e.last_error, e.created_at, e.delivered_at, e.failed_at,
       e.payload,
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'attempt', a.attempt, 'outcome', a.outcome, 'status_code', a.status_code,
                   'error', a.error, 'duration_ms', a.duration_ms,
                   'attempted_at', a.attempted_at) ORDER BY a.id), '[]'::jsonb)
        FROM callback_attempt AS a WHERE a.event_id = e.id) AS attempt_log
FROM sms_log AS m
LEFT JOIN callback_event AS e ON e.message_id = m.id
WHERE m.id = $1 AND m.tenant = $2
ORDER BY e.sequence
"""

# A pending event is already queued (and may be in flight): replaying it would only race.
_REPLAY = """
WITH target AS (
    SELECT e.id, e.status
    FROM callback_event AS e JOIN sms_log AS m ON m.id = e.message_id
    WHERE e.id = $3 AND e.message_id = $1 AND m.tenant = $2
    FOR UPDATE OF e
), replayed AS (
    UPDATE callback_event AS e
    SET status = 'pending', due_at = now(), queued_at = now(), replays = e.replays + 1,
        delivered_at = NULL, failed_at = NULL, claim_token = NULL, claimed_by = NULL
    FROM target
    WHERE e.id = target.id AND target.status <> 'pending'
    RETURNING e.id
)
SELECT target.status, (SELECT count(*) FROM replayed) AS replayed FROM target
"""


async def enqueue_status_events(
    connection: Connection,
    *,
    message_id: uuid.UUID,
    route: CallbackRoute,
    message_status: str,
    changes: Sequence[RecipientChange],
) -> int:
    """Queues one event per recipient whose *status* changed; the caller holds the message's
    row lock inside its transaction. Returns how many were queued."""
    changed = [change for change in changes if change.status_changed]
    if not changed:
        return 0
    payloads = [
        _payload(message_id, route.client_reference, message_status, change) for change in changed
    ]
    await connection.execute(
        _ENQUEUE,
        message_id,
        route.url,
        target_host(route.url),
        [uuid.uuid4() for _ in changed],
        payloads,
    )
    return len(changed)


async def enqueue_gateway_changes(
    connection: Connection,
    *,
    message_id: uuid.UUID,
    route: CallbackRoute | None,
    message_status: str,
    status: RecipientStatus,
    previous: Sequence[tuple[str, str]],
) -> int:
    """Queues an event for each ``(msisdn, previous status)`` the gateway moved to ``status``,
    in order; nothing without a route. Same locking rule as ``enqueue_status_events``."""
    if route is None:
        return 0
    changes = [
        RecipientChange(msisdn, RecipientState(RecipientStatus(before)), RecipientState(status))
        for msisdn, before in previous
    ]
    return await enqueue_status_events(
        connection,
        message_id=message_id,
        route=route,
        message_status=message_status,
        changes=changes,
    )


async def claim_due(
    connection: Connection,
    limit: int,
    lease_seconds: float,
    worker_id: str,
    skip_hosts: Sequence[str] = (),
) -> list[CallbackClaim]:
    """Claims up to ``limit`` due events, each the first pending one of its message, oldest
    due first, none for ``skip_hosts``, skipping rows other workers hold."""
    rows = await connection.fetch(
        _CLAIM_DUE, limit, float(lease_seconds), worker_id, list(skip_hosts)
    )
    return [
        CallbackClaim(
            id=row["id"],
            message_id=row["message_id"],
            sequence=row["sequence"],
            url=row["url"],
            host=row["host"],
            payload=row["payload"],
            attempts=row["attempts"],
            claim_token=row["claim_token"],
            created_at=row["created_at"],
            queued_at=row["queued_at"],
        )
        for row in rows
    ]


async def record_attempt(
    connection: Connection, claim: CallbackClaim, attempt: AttemptRecord, worker_id: str
) -> bool:
    """Logs the attempt and moves the event on (delivered, due again later, or failed);
    False if the claim was lost, in which case only the log entry is written."""
    updated: int = await connection.fetchval(
        _RECORD_ATTEMPT,
        claim.id,
        claim.claim_token,
        claim.attempts,
        attempt.outcome.value,
        attempt.status_code,
        None if attempt.error is None else attempt.error[:500],
        attempt.duration_ms,
        worker_id,
        attempt.attempted_at,
        float(attempt.retry_in_seconds or 0.0),
    )
    return updated == 1


async def release(connection: Connection, claims: Sequence[CallbackClaim]) -> int:
    """Gives claims back untried (graceful stop); returns how many were still held."""
    if not claims:
        return 0
    released: int = await connection.fetchval(
        _RELEASE, [claim.id for claim in claims], [claim.claim_token for claim in claims]
    )
    return released


async def list_events(
    connection: Connection, tenant: str, message_id: uuid.UUID
) -> list[CallbackEvent] | None:
    """The message's events in sequence order with their attempts; None if the message is
    not ``tenant``'s."""
    rows = await connection.fetch(_LIST, message_id, tenant)
    if not rows:
        return None
    return [event_of(row) for row in rows if row["id"] is not None]


async def replay_event(
    connection: Connection, tenant: str, message_id: uuid.UUID, event_id: uuid.UUID
) -> ReplayRefusal | None:
    """Makes a delivered or failed event pending and due now, with the same id and a fresh
    retry horizon; None when done, or why not."""
    row = await connection.fetchrow(_REPLAY, message_id, tenant, event_id)
    if row is None:
        return ReplayRefusal.NOT_FOUND
    return None if row["replayed"] else ReplayRefusal.PENDING


def _payload(
    message_id: uuid.UUID,
    client_reference: str | None,
    message_status: str,
    change: RecipientChange,
) -> str:
    state = change.state
    return json.dumps(
        {
            "type": EVENT_TYPE,
            "message_id": str(message_id),
            "client_reference": client_reference,
            "recipient": change.msisdn,
            "status": state.status.value,
            "previous_status": change.previous.status.value,
            "code": state.code,
            "status_at": None if state.at is None else state.at.isoformat(),
            "operator_status_at": None
            if state.operator_status_at is None
            else state.operator_status_at.isoformat(),
            "message_status": message_status,
        }
    )


def event_of(row: asyncpg.Record) -> CallbackEvent:
    """An event row with its ``attempt_log`` aggregate, as ``_LIST`` selects it."""
    return CallbackEvent(
        id=row["id"],
        message_id=row["message_id"],
        sequence=row["sequence"],
        url=row["url"],
        status=row["status"],
        attempts=row["attempts"],
        replays=row["replays"],
        due_at=row["due_at"],
        last_status_code=row["last_status_code"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        delivered_at=row["delivered_at"],
        failed_at=row["failed_at"],
        payload=row["payload"],
        attempt_log=tuple(
            CallbackAttempt(
                attempt=item["attempt"],
                outcome=item["outcome"],
                status_code=item["status_code"],
                error=item["error"],
                duration_ms=item["duration_ms"],
                attempted_at=datetime.fromisoformat(item["attempted_at"]),
            )
            for item in row["attempt_log"]
        ),
    )


@dataclass(frozen=True, slots=True)
class CallbackBacklog:
    """``pending``: events not yet delivered nor given up; ``due``: those due now (unclaimed,
    or their lease ended); ``oldest_pending_age_seconds``: since the oldest pending event's
    status change (0 when none is pending)."""

    pending: int
    due: int
    oldest_pending_age_seconds: float


async def callback_backlog(connection: Connection) -> CallbackBacklog:
    """The callback backlog, for metrics; reads the pending rows through their partial index."""
    row = await connection.fetchrow(
        """
        SELECT count(*) AS pending,
               count(*) FILTER (WHERE due_at <= now()) AS due,
               coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_age
        FROM callback_event
        WHERE status = 'pending'
        """
    )
    assert row is not None
    return CallbackBacklog(
        pending=row["pending"], due=row["due"], oldest_pending_age_seconds=row["oldest_age"]
    )
