"""A delivery report that finds its message by ``client_reference`` before the dispatcher has
recorded the batch id records the submission itself, so the message never ends final without
its batch id, ``submitted_at``, ``submitted`` event and callback.

The dispatcher may not get there for a while, or at all: it crashed after Sinch accepted,
Postgres was away, or Sinch's answer was lost. Whoever comes first (this, under the message
lock the report path holds, or ``dispatch.record_submitted``) records the submission; the other
finds the batch id set and adds no second event or callback.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING

from smsgateway.domain.message_events import MessageEventKind
from smsgateway.domain.status import RecipientStatus
from smsgateway.store.callbacks import CallbackRoute, enqueue_gateway_changes

if TYPE_CHECKING:
    from smsgateway.store.pool import Connection

# The messages must already be locked (FOR UPDATE) by the caller's transaction. Recipients
# move to submitted before the report is merged, so the report's status follows, in order.
_ADOPT = f"""
WITH input AS (
    SELECT i.message_id, i.batch_id
    FROM unnest($1::uuid[], $2::text[]) AS i(message_id, batch_id)
), message AS (
    UPDATE sms_log AS s
    SET sinch_batch_id = i.batch_id, submitted_at = coalesce(s.submitted_at, now()),
        status = CASE WHEN s.status IN ('queued', 'scheduled') THEN 'submitted' ELSE s.status END,
        updated_at = now()
    FROM input AS i
    WHERE s.id = i.message_id AND s.sinch_batch_id IS NULL
    RETURNING s.id, s.status, i.batch_id
), recipient AS (
    UPDATE sms_recipient AS r SET status = 'submitted', updated_at = now()
    FROM sms_recipient AS was, message AS m
    WHERE r.message_id = m.id AND r.status IN ('queued', 'scheduled')
      AND was.message_id = r.message_id AND was.msisdn = r.msisdn
    RETURNING r.message_id, r.position, r.msisdn, was.status AS previous
), event AS (
    INSERT INTO sms_event (message_id, kind, status, detail)
    SELECT m.id, '{MessageEventKind.SUBMITTED}', 'submitted',
           jsonb_build_object('batch_id', m.batch_id, 'source', 'delivery_report')
    FROM message AS m
)
SELECT m.id, m.status,
       ARRAY(SELECT r.msisdn FROM recipient AS r WHERE r.message_id = m.id
             ORDER BY r.position) AS moved,
       ARRAY(SELECT r.previous FROM recipient AS r WHERE r.message_id = m.id
             ORDER BY r.position) AS moved_from
FROM message AS m
"""


async def adopt_batches(
    connection: Connection,
    batches: Mapping[uuid.UUID, str],
    routes: Mapping[uuid.UUID, CallbackRoute | None],
) -> dict[uuid.UUID, str]:
    """Records ``batches`` (message id → Sinch batch id) for locked messages that have no
    batch id yet, as the dispatcher would: batch id, ``submitted_at``, pending recipients
    ``submitted``, a ``submitted`` event, and a status callback per moved recipient to the
    message's route. Returns the adopted messages' new statuses."""
    if not batches:
        return {}
    ordered = sorted(batches)
    rows = await connection.fetch(_ADOPT, ordered, [batches[m] for m in ordered])
    statuses: dict[uuid.UUID, str] = {}
    for row in sorted(rows, key=lambda item: item["id"]):
        statuses[row["id"]] = row["status"]
        await enqueue_gateway_changes(
            connection,
            message_id=row["id"],
            route=routes.get(row["id"]),
            message_status=row["status"],
            status=RecipientStatus.SUBMITTED,
            previous=list(zip(row["moved"], row["moved_from"], strict=True)),
        )
    return statuses
