"""A tenant's own events (``message.inbound``, ``opt_out.changed``), queued with the change.

They ride the status callbacks' queue (``store.callbacks``: same claims, attempts, retries,
signatures and worker) on the stream ``tenant:<name>``, so a tenant's events arrive in the
order they happened and a retrying one holds back the ones behind it. They go to the tenant's
``tenant_setting.callback_url``; a tenant without one, or traffic of a number assigned to no
tenant, queues nothing. Queuing takes the tenant's ``tenant_setting`` row lock, which orders
concurrent writers of one stream; the transaction that changed the data queues its event, so
a committed change always has one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from smsgateway.domain.callback_targets import target_host
from smsgateway.store.callbacks import CallbackEvent, ReplayRefusal, event_of

if TYPE_CHECKING:
    from datetime import datetime

    from smsgateway.store.inbound import InboundRecord
    from smsgateway.store.opt_outs import OptOutRecord
    from smsgateway.store.pool import Connection

INBOUND_EVENT: Final = "message.inbound"
OPT_OUT_EVENT: Final = "opt_out.changed"

# The route's row lock is taken by its own statement (``_ROUTE``) first, so this statement's
# snapshot already sees every event a writer before us committed on the stream.
_ENQUEUE = """
INSERT INTO callback_event (id, tenant, stream, sequence, url, host, payload)
SELECT u.id, $1, 'tenant:' || $1, base.sequence + u.ordinality, $4, $5,
       u.payload::jsonb || jsonb_build_object(
           'id', u.id, 'sequence', base.sequence + u.ordinality, 'created_at', now())
FROM (SELECT coalesce(max(sequence), 0) AS sequence
      FROM callback_event WHERE stream = 'tenant:' || $1) AS base,
     unnest($2::uuid[], $3::text[]) WITH ORDINALITY AS u(id, payload, ordinality)
"""

_ROUTE = """
SELECT callback_url FROM tenant_setting WHERE tenant = $1 AND callback_url IS NOT NULL
FOR UPDATE
"""

_ATTEMPT_LOG = """
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'attempt', a.attempt, 'outcome', a.outcome, 'status_code', a.status_code,
                   'error', a.error, 'duration_ms', a.duration_ms,
                   'attempted_at', a.attempted_at) ORDER BY a.id), '[]'::jsonb)
        FROM callback_attempt AS a WHERE a.event_id = e.id) AS attempt_log
"""

_LIST = f"""
SELECT e.id, e.message_id, e.sequence, e.url, e.status, e.attempts, e.replays, e.due_at,
       e.last_status_code, e.last_error, e.created_at, e.delivered_at, e.failed_at, e.payload,
       {_ATTEMPT_LOG}
FROM callback_event AS e
WHERE e.tenant = $1 AND ($2::bigint IS NULL OR e.sequence < $2)
ORDER BY e.sequence DESC
LIMIT $3
"""

_REPLAY = """
WITH target AS (
    SELECT e.id, e.status FROM callback_event AS e
    WHERE e.id = $2 AND e.tenant = $1
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


async def enqueue_tenant_events(
    connection: Connection, tenant: str | None, payloads: Sequence[dict[str, Any]]
) -> int:
    """Queues ``payloads`` in order on the tenant's stream, inside the caller's transaction;
    nothing for no tenant or a tenant without a callback URL. Returns how many were queued."""
    if tenant is None or not payloads:
        return 0
    url: str | None = await connection.fetchval(_ROUTE, tenant)
    if url is None:
        return 0
    await connection.execute(
        _ENQUEUE,
        tenant,
        [uuid.uuid4() for _ in payloads],
        [json.dumps(payload) for payload in payloads],
        url,
        target_host(url),
    )
    return len(payloads)


async def list_tenant_events(
    connection: Connection, tenant: str, *, before_sequence: int | None, limit: int
) -> list[CallbackEvent]:
    """The tenant's events, newest first, with their attempts."""
    rows = await connection.fetch(_LIST, tenant, before_sequence, limit)
    return [event_of(row) for row in rows]


async def replay_tenant_event(
    connection: Connection, tenant: str, event_id: uuid.UUID
) -> ReplayRefusal | None:
    """Makes a delivered or failed event of the tenant pending and due now; None when done."""
    row = await connection.fetchrow(_REPLAY, tenant, event_id)
    if row is None:
        return ReplayRefusal.NOT_FOUND
    return None if row["replayed"] else ReplayRefusal.PENDING


def inbound_payload(record: InboundRecord) -> dict[str, Any]:
    """The ``message.inbound`` body: the inbound message as ``GET /v1/inbound-messages``
    shows it."""
    return {
        "type": INBOUND_EVENT,
        "tenant": record.tenant,
        "message": {
            "id": str(record.id),
            "sinch_id": record.sinch_id,
            "type": record.type,
            "sender": record.sender,
            "to": record.recipient,
            "body": record.body,
            "keyword": record.keyword,
            "client_reference": record.client_reference,
            "operator_id": record.operator_id,
            "received_at": _iso(record.received_at),
            "sent_at": _iso(record.sent_at),
            "created_at": _iso(record.created_at),
        },
    }


def opt_out_payload(record: OptOutRecord) -> dict[str, Any]:
    """The ``opt_out.changed`` body: the opt-out row after the change."""
    return {
        "type": OPT_OUT_EVENT,
        "tenant": record.tenant,
        "opt_out": {
            "msisdn": record.msisdn,
            "opted_out": record.opted_out,
            "sender": record.sender,
            "source": record.source,
            "keyword": record.keyword,
            "inbound_id": None if record.inbound_id is None else str(record.inbound_id),
            "note": record.note,
            "changed_at": _iso(record.changed_at),
        },
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
