"""The callback backlog gauges' query: pending and due events, and the oldest one's age."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from smsgateway.store import callbacks
from tests.integration.dispatch.accepted import insert_accepted

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _event(
    connection: asyncpg.Connection, message_id: uuid.UUID, sequence: int, **columns: str
) -> None:
    await connection.execute(
        "INSERT INTO callback_event (id, message_id, stream, sequence, url, host, payload)"
        " VALUES (gen_random_uuid(), $1::uuid, $1::uuid::text, $2, 'http://example.test/cb',"
        " 'example.test', '{}')",
        message_id,
        sequence,
    )
    for column, expression in columns.items():
        await connection.execute(
            f"UPDATE callback_event SET {column} = {expression}"
            " WHERE message_id = $1 AND sequence = $2",
            message_id,
            sequence,
        )


async def test_backlog_counts_pending_and_due_events_and_ages_the_oldest(
    database_url: str,
) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        empty = await callbacks.callback_backlog(connection)
        message = await insert_accepted(connection)
        await _event(connection, message, 1, created_at="now() - interval '120 seconds'")
        await _event(connection, message, 2, due_at="now() + interval '1 hour'")
        await _event(
            connection,
            message,
            3,
            status="'delivered'",
            delivered_at="now()",
            created_at="now() - interval '1 day'",
        )
        backlog = await callbacks.callback_backlog(connection)
    finally:
        await connection.close()
    assert empty == callbacks.CallbackBacklog(0, 0, 0.0)
    assert (backlog.pending, backlog.due) == (2, 1)
    assert 119 <= backlog.oldest_pending_age_seconds <= 150
