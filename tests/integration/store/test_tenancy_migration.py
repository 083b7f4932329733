"""The tenancy migration (20261203_tenancy): what existing rows become, and the way back."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from smsgateway.store.schema import downgrade_to, upgrade_to_head
from tests.support.settings import MIGRATIONS_DIR

pytestmark = pytest.mark.asyncio

BEFORE = "20261203_tenancy-1"


async def test_existing_keys_keep_every_power_and_existing_opt_outs_stay_global(
    database_url: str,
) -> None:
    await asyncio.to_thread(downgrade_to, MIGRATIONS_DIR, database_url, BEFORE)
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            "INSERT INTO api_key (id, tenant, name, prefix, key_hash)"
            " VALUES ($1, 'acme', 'old', 'sgw_oldkey00', $2)",
            uuid.uuid4(),
            bytes(32),
        )
        await connection.execute(
            "INSERT INTO opt_out (msisdn, opted_out, changed_at, source)"
            " VALUES ('+12015550123', true, now(), 'api')"
        )
        await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, database_url)
        scopes = await connection.fetchval("SELECT scopes FROM api_key WHERE name = 'old'")
        opt_out = await connection.fetchrow("SELECT tenant, sender, opted_out FROM opt_out")
        # The way back keeps an opt-out in force, folded into the one row per number.
        await connection.execute(
            "INSERT INTO opt_out (msisdn, opted_out, changed_at, source, tenant, sender)"
            " VALUES ('+12015550123', true, now(), 'inbound', 'acme', '+12025550101')"
        )
        await asyncio.to_thread(downgrade_to, MIGRATIONS_DIR, database_url, BEFORE)
        kept = await connection.fetch("SELECT msisdn, opted_out FROM opt_out")
        await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, database_url)
    finally:
        await connection.close()
    assert sorted(scopes) == ["admin", "read", "send"]
    assert (opt_out["tenant"], opt_out["sender"], opt_out["opted_out"]) == (None, None, True)
    assert [(row["msisdn"], row["opted_out"]) for row in kept] == [("+12015550123", True)]
