"""The outbox's SQL: claims skip held rows, leases expire by themselves, tokens guard changes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest

from smsgateway.store import outbox
from smsgateway.store.dispatch import claim_and_load, load_outgoing_many
from smsgateway.store.opt_outs import OptChange, record_change
from tests.integration.dispatch.accepted import insert_accepted
from tests.support.polling import wait_until

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_claims_are_exclusive_and_count_attempts(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as connection:
        ids = {await insert_accepted(connection) for _ in range(5)}
        held_later = await insert_accepted(connection, due_in_seconds=60)

    async def claim(worker: str) -> list[outbox.Claim]:
        async with pool.acquire() as connection:
            return await outbox.claim_due(connection, 3, 30, worker)

    first, second = await asyncio.gather(claim("a"), claim("b"))

    claimed = [c.message_id for c in first + second]
    assert len(claimed) == len(set(claimed)) == 5
    assert set(claimed) == ids
    assert held_later not in claimed
    assert all(c.attempts == 1 for c in first + second)
    async with pool.acquire() as connection:
        assert await outbox.claim_due(connection, 10, 30, "c") == []
        owners = await connection.fetch("SELECT DISTINCT claimed_by FROM outbox WHERE attempts = 1")
    assert {row["claimed_by"] for row in owners} == {"a", "b"}


async def test_an_ended_lease_is_claimed_again_and_the_old_token_is_dead(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as connection:
        message_id = await insert_accepted(connection)
        (crashed,) = await outbox.claim_due(connection, 10, 0.2, "crashed")

    async def reclaimed() -> list[outbox.Claim]:
        async with pool.acquire() as connection:
            return await outbox.claim_due(connection, 10, 30, "next")

    claims: list[outbox.Claim] = []

    async def claimed_again() -> bool:
        claims.extend(await reclaimed())
        return bool(claims)

    await wait_until(claimed_again, timeout_s=5, interval_s=0.05, message="lease expiry")
    (again,) = claims
    assert again.message_id == message_id
    assert again.attempts == 2
    assert again.claim_token != crashed.claim_token
    async with pool.acquire() as connection:
        assert not await outbox.complete(connection, message_id, crashed.claim_token)
        assert not await outbox.extend_lease(connection, crashed, 30)
        assert await outbox.reschedule(connection, message_id, crashed.claim_token, 0, "x") is None
        assert await outbox.release(connection, [crashed]) == 0
        assert await outbox.extend_lease(connection, again, 30)
        assert await outbox.complete(connection, message_id, again.claim_token)
        assert await connection.fetchval("SELECT count(*) FROM outbox") == 0


async def test_reschedule_and_release(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as connection:
        retried = await insert_accepted(connection)
        released = await insert_accepted(connection)
        claims = {c.message_id: c for c in await outbox.claim_due(connection, 10, 30, "w")}

        due_at = await outbox.reschedule(
            connection, retried, claims[retried].claim_token, 120, "Sinch answered 503"
        )
        assert await outbox.release(connection, [claims[released]]) == 1

        rows = {
            row["message_id"]: row
            for row in await connection.fetch(
                "SELECT message_id, due_at, attempts, claim_token, claimed_by, last_error,"
                " due_at <= now() AS due FROM outbox"
            )
        }
        db_now = await connection.fetchval("SELECT now()")
    assert due_at is not None
    assert 119 <= (due_at - db_now).total_seconds() <= 121
    assert rows[retried]["attempts"] == 1
    assert rows[retried]["claim_token"] is None
    assert rows[retried]["last_error"] == "Sinch answered 503"
    assert rows[released]["attempts"] == 0
    assert rows[released]["claim_token"] is None
    assert rows[released]["claimed_by"] is None
    assert rows[released]["due"]


async def test_stats_report_depth_and_the_oldest_due_entry(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as connection:
        assert await outbox.outbox_stats(connection) == outbox.OutboxStats(0, 0, 0.0)
        old = await insert_accepted(connection)
        await connection.execute(
            "UPDATE outbox SET due_at = now() - interval '90 seconds' WHERE message_id = $1", old
        )
        await insert_accepted(connection)
        await insert_accepted(connection, due_in_seconds=600)

        stats = await outbox.outbox_stats(connection)

    assert stats.depth == 3
    assert stats.due == 2
    assert 89 <= stats.oldest_due_age_seconds <= 100


async def test_a_claim_reads_its_messages_in_the_same_round_trip(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as connection:
        plain = await insert_accepted(connection, ("+15551230001", "+15551230002"), body="hi")
        await record_change(
            connection, OptChange("+15551230002", True, datetime.now(UTC), source="api")
        )
        later = await insert_accepted(connection, due_in_seconds=60)
        claimed = {
            item.claim.message_id: item for item in await claim_and_load(connection, 10, 30, "w")
        }
        loaded = await load_outgoing_many(connection, [plain])
    assert set(claimed) == {plain}
    assert later not in claimed
    assert claimed[plain].message == loaded[plain]
    assert claimed[plain].message is not None
    assert claimed[plain].message.recipients == ("+15551230001", "+15551230002")
    assert claimed[plain].message.opted_out == ("+15551230002",)
    assert claimed[plain].claim.attempts == 1
    assert claimed[plain].claim.claimed_by == "w"
    async with pool.acquire() as connection:
        assert await claim_and_load(connection, 10, 30, "other") == []
