"""The schema lives in Alembic migrations: upgrade, downgrade and upgrade again on a real DB."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from smsgateway.store.schema import current_revision, downgrade_to, head_revision, upgrade_to_head
from tests.support.settings import MIGRATIONS_DIR

pytestmark = pytest.mark.asyncio

EXPECTED_TABLES = {
    "sms_log",
    "sms_recipient",
    "sms_event",
    "api_key",
    "outbox",
    "idempotency_key",
    "send_throttle",
    "webhook_nonce",
    "awaiting_report",
}


async def tables_and_revision(dsn: str) -> tuple[set[str], str | None]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row["tablename"] for row in rows} - {"alembic_version"}, await current_revision(
            connection
        )
    finally:
        await connection.close()


async def test_upgrade_downgrade_upgrade(empty_database_url: str) -> None:
    head = head_revision(MIGRATIONS_DIR)
    assert head is not None

    await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, empty_database_url)
    tables, revision = await tables_and_revision(empty_database_url)
    assert tables >= EXPECTED_TABLES
    assert revision == head

    await asyncio.to_thread(downgrade_to, MIGRATIONS_DIR, empty_database_url, "base")
    tables, revision = await tables_and_revision(empty_database_url)
    assert tables == set()
    assert revision is None

    await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, empty_database_url)
    tables, revision = await tables_and_revision(empty_database_url)
    assert tables >= EXPECTED_TABLES
    assert revision == head


async def test_the_schema_refuses_what_the_gateway_must_never_store(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        insert = (
            "INSERT INTO sms_log (id, body, encoding, segment_count, character_count,"
            " recipient_count, status) VALUES (gen_random_uuid(), 'hi', $1, 1, 2, 1, $2)"
        )
        with pytest.raises(asyncpg.CheckViolationError):
            await connection.execute(insert, "ASCII", "queued")
        with pytest.raises(asyncpg.CheckViolationError):
            await connection.execute(insert, "GSM-7", "sent-ish")
        await connection.execute(insert, "GSM-7", "queued")
        with pytest.raises(asyncpg.UniqueViolationError):
            await connection.execute(
                "UPDATE sms_log SET sinch_batch_id = 'B1'; "
                "INSERT INTO sms_log (id, body, encoding, segment_count, character_count,"
                " recipient_count, sinch_batch_id) "
                "VALUES (gen_random_uuid(), 'x', 'GSM-7', 1, 1, 1, 'B1')"
            )
    finally:
        await connection.close()
