"""A claim is one statement that still commits durably on the dispatcher's fast-commit pool."""

from __future__ import annotations

import asyncpg
import pytest

from smsgateway.store import outbox
from tests.integration.dispatch.accepted import insert_accepted

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_claim_turns_synchronous_commit_on_for_its_own_transaction_only(
    database_url: str,
) -> None:
    connection = await asyncpg.connect(database_url, server_settings={"synchronous_commit": "off"})
    try:
        message_id = await insert_accepted(connection)
        async with connection.transaction():
            (claim,) = await outbox.claim_due(connection, 10, 30, "w")
            assert claim.message_id == message_id
            # What the commit of the claim's transaction will run with.
            assert await connection.fetchval("SHOW synchronous_commit") == "on"
        # The session's own setting (the dispatch pool's) is back afterwards.
        assert await connection.fetchval("SHOW synchronous_commit") == "off"
    finally:
        await connection.close()
