"""Status updates stay heap-only (HOT) with the retention schema: none of the indexes it adds
covers a column that a status change writes, so a report writes no index entry."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

pytestmark = pytest.mark.asyncio


async def test_message_and_recipient_status_changes_are_hot(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        message_id = uuid.uuid4()
        await connection.execute(
            "INSERT INTO sms_log (id, tenant, body, encoding, segment_count, character_count,"
            " recipient_count, status) VALUES ($1, 't', 'Hi', 'GSM-7', 1, 2, 1, 'submitted')",
            message_id,
        )
        await connection.execute(
            "INSERT INTO sms_recipient (message_id, position, msisdn, status)"
            " VALUES ($1, 0, '+46701234567', 'submitted')",
            message_id,
        )
        async with connection.transaction():
            # The columns report ingestion writes (store/reports.py, store/dispatch.py).
            await connection.execute(
                "UPDATE sms_recipient SET status = 'delivered', sinch_code = 0,"
                " status_at = now(), operator_status_at = now(), operator = '24001',"
                " updated_at = now() WHERE message_id = $1",
                message_id,
            )
            await connection.execute(
                "UPDATE sms_log SET status = 'delivered', status_code = NULL,"
                " status_detail = NULL, updated_at = now() WHERE id = $1",
                message_id,
            )
            hot = await connection.fetchrow(
                "SELECT pg_stat_get_xact_tuples_hot_updated('sms_log'::regclass) AS message,"
                " pg_stat_get_xact_tuples_hot_updated('sms_recipient'::regclass) AS recipient"
            )
        assert hot is not None
        assert (hot["message"], hot["recipient"]) == (1, 1)
    finally:
        await connection.close()
