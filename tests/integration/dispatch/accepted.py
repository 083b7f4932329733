"""Accepted messages as the accept path stores them, inserted with plain SQL for the dispatcher.

One transaction per message: the ``sms_log`` row, its ``sms_recipient`` rows and the outbox row.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from smsgateway.store.pool import create_pool

CALLER_HOOK = "https://caller.example/hook"


async def open_pool(database_url: str, *, max_size: int = 10) -> asyncpg.Pool:
    return await create_pool(
        database_url, min_size=1, max_size=max_size, command_timeout=10, connect_timeout=5
    )


async def insert_accepted(
    connection: Any,
    recipients: Sequence[str] = ("+15551230001",),
    *,
    body: str = "Hello from the gateway",
    sender: str | None = None,
    status: str = "queued",
    delivery_report: str = "none",
    send_at: datetime | None = None,
    expire_at: datetime | None = None,
    due_in_seconds: float = 0.0,
    parameters: dict[str, dict[str, str]] | None = None,
    max_segments: int | None = None,
    segment_count: int = 1,
    callback_url: str | None = CALLER_HOOK,
    api_key_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Stores one accepted message; its outbox row is due ``due_in_seconds`` from now."""
    message_id = uuid.uuid4()
    async with connection.transaction():
        await connection.execute(
            """
            INSERT INTO sms_log (id, tenant, sender, body, encoding, segment_count,
                                 character_count, recipient_count, client_reference, status,
                                 delivery_report, send_at, expire_at, callback_url, parameters,
                                 max_segments, api_key_id)
            VALUES ($1, 'default', $2, $3, 'GSM-7', $4, $5, $6, 'callers-own-ref', $7, $8, $9,
                    $10, $13, $11, $12, $14)
            """,
            message_id,
            sender,
            body,
            segment_count,
            len(body),
            len(recipients),
            status,
            delivery_report,
            send_at,
            expire_at,
            parameters,
            max_segments,
            callback_url,
            api_key_id,
        )
        await connection.execute(
            """
            INSERT INTO sms_recipient (message_id, position, msisdn, status)
            SELECT $1, r.position, r.msisdn, 'queued'
            FROM unnest($2::text[]) WITH ORDINALITY AS r(msisdn, position)
            """,
            message_id,
            list(recipients),
        )
        await connection.execute(
            "INSERT INTO outbox (message_id, due_at)"
            " VALUES ($1, now() + make_interval(secs => $2))",
            message_id,
            float(due_in_seconds),
        )
    return message_id


@dataclass(frozen=True)
class MessageRow:
    status: str
    status_code: str | None
    status_detail: str | None
    sinch_batch_id: str | None
    submitted_at: datetime | None
    recipient_statuses: list[str]
    event_kinds: list[str]
    events: list[dict[str, Any]]
    in_outbox: bool


async def message_row(connection: Any, message_id: uuid.UUID) -> MessageRow:
    row = await connection.fetchrow(
        "SELECT status, status_code, status_detail, sinch_batch_id, submitted_at,"
        " EXISTS (SELECT 1 FROM outbox WHERE message_id = $1) AS in_outbox"
        " FROM sms_log WHERE id = $1",
        message_id,
    )
    recipients = await connection.fetch(
        "SELECT status FROM sms_recipient WHERE message_id = $1 ORDER BY position", message_id
    )
    events = await connection.fetch(
        "SELECT kind, detail FROM sms_event WHERE message_id = $1 ORDER BY id", message_id
    )
    return MessageRow(
        status=row["status"],
        status_code=row["status_code"],
        status_detail=row["status_detail"],
        sinch_batch_id=row["sinch_batch_id"],
        submitted_at=row["submitted_at"],
        recipient_statuses=[r["status"] for r in recipients],
        event_kinds=[e["kind"] for e in events],
        events=[e["detail"] for e in events],
        in_outbox=row["in_outbox"],
    )


async def callback_payloads(connection: Any, message_id: uuid.UUID) -> list[dict[str, Any]]:
    """The status callback events queued for the message, in sequence order, with their URL."""
    rows = await connection.fetch(
        "SELECT url, payload FROM callback_event WHERE message_id = $1 ORDER BY sequence",
        message_id,
    )
    return [{**row["payload"], "url": row["url"]} for row in rows]


async def status_of(pool: asyncpg.Pool, message_id: uuid.UUID) -> str:
    async with pool.acquire() as connection:
        status: str = await connection.fetchval(
            "SELECT status FROM sms_log WHERE id = $1", message_id
        )
    return status
