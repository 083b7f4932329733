"""The data migration that gives stored inbound numbers their `+` (20261203_inbound_e164)."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest

from smsgateway.domain.phone import normalise_address
from smsgateway.store.schema import downgrade_to, upgrade_to_head
from tests.support.settings import MIGRATIONS_DIR

pytestmark = pytest.mark.asyncio

BEFORE = "20261203_inbound_e164-1"

INSERT = """
INSERT INTO inbound_message (sinch_id, type, sender, recipient, received_at, payload)
VALUES ($1, 'mo_text', $2, $3, now(), $4::jsonb)
"""

# (what Sinch sent as from, as to) -> what the old code stored as (sender, recipient)
ROWS = {
    "a": (("15551230001", "11203453453"), ("+15551230001", "11203453453")),
    "b": (("+46701234567", "+15550009999"), ("+46701234567", "+15550009999")),
    "c": (("ACME", "12345"), ("+ACME", "12345")),
    "d": (("Sinch Co", "4712345678"), ("+SinchCo", "4712345678")),
    "e": (("447700900123", "72345"), ("+447700900123", "72345")),
}


async def migrate(dsn: str, to_head: bool) -> None:
    if to_head:
        await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, dsn)
    else:
        await asyncio.to_thread(downgrade_to, MIGRATIONS_DIR, dsn, BEFORE)


async def test_rows_stored_without_plus_are_fixed_as_the_gateway_now_reads_them(
    database_url: str,
) -> None:
    await migrate(database_url, to_head=False)
    connection = await asyncpg.connect(database_url)
    try:
        for sinch_id, ((sent_from, sent_to), (sender, recipient)) in ROWS.items():
            payload = json.dumps({"type": "mo_text", "from": sent_from, "to": sent_to})
            await connection.execute(INSERT, sinch_id, sender, recipient, payload)
        await migrate(database_url, to_head=True)
        rows = await connection.fetch("SELECT sinch_id, sender, recipient FROM inbound_message")
    finally:
        await connection.close()
    fixed = {row["sinch_id"]: (row["sender"], row["recipient"]) for row in rows}
    assert fixed == {
        sinch_id: (normalise_address(sent_from), normalise_address(sent_to))
        for sinch_id, ((sent_from, sent_to), _) in ROWS.items()
    }


async def test_the_migration_runs_on_an_empty_and_on_a_large_table(database_url: str) -> None:
    await migrate(database_url, to_head=False)
    await migrate(database_url, to_head=True)  # empty
    await migrate(database_url, to_head=False)
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            """
            INSERT INTO inbound_message (sinch_id, type, sender, recipient, received_at, payload)
            SELECT 'n' || n, 'mo_text', '+1555' || lpad(n::text, 7, '0'),
                   CASE WHEN n % 2 = 0 THEN '15550009999' ELSE '+15550009999' END,
                   now(), '{}'::jsonb
            FROM generate_series(1, 50000) AS n
            """
        )
        await migrate(database_url, to_head=True)
        counts = await connection.fetchrow(
            "SELECT count(*) FILTER (WHERE recipient = '+15550009999') AS fixed,"
            " count(*) FILTER (WHERE sender LIKE '+1555%') AS senders FROM inbound_message"
        )
    finally:
        await connection.close()
    assert (counts["fixed"], counts["senders"]) == (50000, 50000)
