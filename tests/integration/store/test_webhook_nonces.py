"""Webhook nonces in Postgres: each is new once, whichever process or batch records it."""

from __future__ import annotations

import asyncpg
import pytest

from smsgateway.store.webhook_nonces import record_first_uses

pytestmark = pytest.mark.asyncio


async def test_a_nonce_is_first_only_once_even_twice_in_one_batch(database_url: str) -> None:
    one = await asyncpg.connect(database_url)
    other = await asyncpg.connect(database_url)
    try:
        assert await record_first_uses(one, ["a", "b", "a"]) == [True, True, False]
        # Another connection, as another process would have.
        assert await record_first_uses(other, ["a", "c"]) == [False, True]
        assert await record_first_uses(one, []) == []
        seen = await one.fetch("SELECT nonce FROM webhook_nonce ORDER BY nonce")
    finally:
        await one.close()
        await other.close()
    assert [row["nonce"] for row in seen] == ["a", "b", "c"]
