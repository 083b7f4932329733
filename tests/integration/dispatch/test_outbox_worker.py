"""Outbox workers end to end: due work is sent once, held work waits, stops are graceful."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import asyncpg
import httpx
import pytest

from smsgateway.sinch import SinchClient
from smsgateway.sinch.models import SendBatchRequest
from smsgateway.store import outbox
from smsgateway.store.pool import _init_connection as init_connection
from tests.integration.dispatch.accepted import insert_accepted, message_row
from tests.integration.dispatch.harness import (
    READ_TIMEOUT_S,
    StartWorker,
    set_faults,
    sinch_client,
)
from tests.support.polling import wait_until
from tests.support.sinch_simulator import RunningSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def count_where(pool: asyncpg.Pool, condition: str) -> int:
    async with pool.acquire() as connection:
        count: int = await connection.fetchval(f"SELECT count(*) FROM sms_log WHERE {condition}")
    return count


async def all_submitted(pool: asyncpg.Pool, total: int, timeout_s: float = 10) -> None:
    async def done() -> bool:
        return await count_where(pool, "status = 'submitted'") == total

    await wait_until(done, timeout_s=timeout_s, interval_s=0.05, message=f"{total} submitted")


async def batches_per_reference(sim: RunningSimulator) -> dict[str, int]:
    response = await sim.client.get("/_admin/stats")
    response.raise_for_status()
    counts: dict[str, int] = response.json()["batches_by_client_reference"]
    return counts


async def insert_many(pool: asyncpg.Pool, count: int) -> list[uuid.UUID]:
    async with pool.acquire() as connection:
        return [await insert_accepted(connection) for _ in range(count)]


async def test_a_worker_sends_due_messages_and_retries_server_errors(
    pool: asyncpg.Pool, sim: RunningSimulator, start_worker: StartWorker
) -> None:
    ids = await insert_many(pool, 10)
    async with pool.acquire() as connection:
        ids.append(await insert_accepted(connection, [f"+1555123{n:04d}" for n in range(25)]))
    await set_faults(sim, server_error_rate=1.0, max_faults=4)

    await start_worker()

    await all_submitted(pool, 11)
    assert await batches_per_reference(sim) == {str(i): 1 for i in ids}
    async with pool.acquire() as connection:
        retries = await connection.fetchval(
            "SELECT count(*) FROM sms_event WHERE kind = 'send_retry'"
        )
        assert await connection.fetchval("SELECT count(*) FROM outbox") == 0
        big = await message_row(connection, ids[-1])
    assert retries == 4
    assert big.recipient_statuses == ["submitted"] * 25


async def test_a_scheduled_message_is_held_until_due(
    pool: asyncpg.Pool, sim: RunningSimulator, start_worker: StartWorker
) -> None:
    async with pool.acquire() as connection:
        due_at = await connection.fetchval("SELECT now() + interval '1 second'")
        message_id = await insert_accepted(connection, status="scheduled", send_at=due_at)
        await connection.execute("UPDATE outbox SET due_at = $1", due_at)
    await start_worker()

    await all_submitted(pool, 1)

    async with pool.acquire() as connection:
        row = await message_row(connection, message_id)
    assert row.submitted_at is not None
    assert row.submitted_at >= due_at
    assert row.submitted_at - due_at < timedelta(seconds=2)
    assert await sim.batch_count(str(message_id)) == 1


async def test_a_crashed_claim_is_resolved_by_another_worker_without_resending(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator, start_worker: StartWorker
) -> None:
    async with pool.acquire() as connection:
        message_id = await insert_accepted(connection)
        (crashed,) = await outbox.claim_due(connection, 10, 0.5, "crashed-worker")
    # The crashed worker's send reached Sinch; then it died before recording anything.
    accepted = await sinch.send_batch(
        SendBatchRequest(to=["+15551230001"], body="x", client_reference=str(message_id))
    )

    await start_worker()
    await all_submitted(pool, 1)

    assert await sim.batch_count(str(message_id)) == 1
    async with pool.acquire() as connection:
        row = await message_row(connection, message_id)
    assert crashed.attempts == 1
    assert row.sinch_batch_id == accepted.id
    assert row.events[-1]["resolved_by_lookup"]
    assert row.events[-1]["attempt"] == 2


@pytest.mark.slow
async def test_two_workers_send_every_message_exactly_once(
    pool: asyncpg.Pool,
    second_pool: asyncpg.Pool,
    http: httpx.AsyncClient,
    sim: RunningSimulator,
    start_worker: StartWorker,
) -> None:
    ids = await insert_many(pool, 200)
    # Every tenth send times out after the simulator recorded it: outcomes to resolve.
    await set_faults(sim, timeout_rate=0.1, max_faults=10, latency_ms=5, jitter_ms=10)

    first = await start_worker(batch_size=10, concurrency=8)
    second = await start_worker(
        on_pool=second_pool, client=sinch_client(http, sim), batch_size=10, concurrency=8
    )

    await all_submitted(pool, 200, timeout_s=30)
    assert await batches_per_reference(sim) == {str(i): 1 for i in ids}
    async with pool.acquire() as connection:
        workers = await connection.fetch(
            "SELECT detail->>'worker' AS worker, count(*) FROM sms_event"
            " WHERE kind = 'submitted' GROUP BY 1"
        )
    # Both shared the work.
    assert {row["worker"] for row in workers} == {
        first.config.worker_id,
        second.config.worker_id,
    }


@pytest.mark.slow
async def test_the_send_cap_holds_across_two_workers(
    pool: asyncpg.Pool,
    second_pool: asyncpg.Pool,
    http: httpx.AsyncClient,
    sinch: SinchClient,
    sim: RunningSimulator,
    start_worker: StartWorker,
) -> None:
    total = 150
    await insert_many(pool, total)
    cap = {"send_rate_per_second": 50.0, "send_burst": 1.0}

    await start_worker(**cap)
    await start_worker(on_pool=second_pool, client=sinch_client(http, sim), **cap)
    await all_submitted(pool, total, timeout_s=20)

    created = sorted(
        [batch.created_at async for batch in sinch.iter_batches() if batch.created_at is not None]
    )
    assert len(created) == total
    # Sinch's clock, millisecond precision; one token of burst, so no initial rush to discount.
    rate = (total - 1) / (created[-1] - created[0]).total_seconds()
    # Never above the cap; near it (a busy machine may fall a little short of it).
    assert 50.0 * 0.8 <= rate <= 50.0 * 1.05, rate


async def test_stop_releases_waiting_claims_and_finishes_running_ones(
    pool: asyncpg.Pool, sim: RunningSimulator, start_worker: StartWorker
) -> None:
    ids = await insert_many(pool, 20)
    await set_faults(sim, latency_ms=150)
    worker = await start_worker(batch_size=8, concurrency=2)

    async def holds_a_full_batch() -> bool:
        return worker.in_flight == 10

    await wait_until(holds_a_full_batch, timeout_s=5, message="a full batch claimed")
    await worker.stop(5.0)

    submitted = await count_where(pool, "status = 'submitted'")
    async with pool.acquire() as connection:
        left = await connection.fetch(
            "SELECT attempts, claim_token, due_at <= now() AS due FROM outbox"
        )
    assert 2 <= submitted < 20
    assert len(left) == 20 - submitted
    assert all(row["claim_token"] is None and row["due"] for row in left)
    assert all(row["attempts"] == 0 for row in left)

    await set_faults(sim)
    await start_worker()
    await all_submitted(pool, 20)
    assert await batches_per_reference(sim) == {str(i): 1 for i in ids}


async def test_a_send_cut_at_the_stop_deadline_is_resolved_later(
    pool: asyncpg.Pool, sim: RunningSimulator, start_worker: StartWorker
) -> None:
    (message_id,) = await insert_many(pool, 1)
    # Slower than the stop deadline, faster than the client's read timeout: the simulator still
    # records the batch after the worker gave up on the answer.
    await set_faults(sim, latency_ms=READ_TIMEOUT_S * 1000 / 2)
    worker = await start_worker(lease_seconds=1.0)

    async def sending() -> bool:
        return worker.in_flight == 1

    await wait_until(sending, timeout_s=5, message="a send under way")
    await asyncio.sleep(0)  # let the dispatch reach the Sinch call
    await worker.stop(0.0)

    async with pool.acquire() as connection:
        entry = await connection.fetchrow("SELECT attempts, claim_token FROM outbox")
    assert entry["claim_token"] is not None  # left to its lease: a send may be under way

    await set_faults(sim)
    await start_worker()
    await all_submitted(pool, 1)
    assert await sim.batch_count(str(message_id)) == 1


async def test_a_database_outage_midway_delays_but_never_duplicates(
    pool: asyncpg.Pool,
    second_pool: asyncpg.Pool,
    http: httpx.AsyncClient,
    sim: RunningSimulator,
    start_worker: StartWorker,
) -> None:
    ids = await insert_many(pool, 30)
    await set_faults(sim, latency_ms=20)
    await start_worker(
        on_pool=second_pool, client=sinch_client(http, sim), lease_seconds=1.0, concurrency=4
    )

    async def some_sent() -> bool:
        return await count_where(pool, "status = 'submitted'") >= 3

    await wait_until(some_sent, timeout_s=5, message="sending under way")
    async with pool.acquire() as connection:
        # Cut every connection but this one: the worker's claims, records and releases fail
        # wherever they happen to be.
        killed = await connection.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    assert killed > 0

    await all_submitted(pool, 30, timeout_s=15)
    assert await batches_per_reference(sim) == {str(i): 1 for i in ids}


async def test_a_claimed_message_is_sent_without_being_loaded_again(
    database_url: str, pool: asyncpg.Pool, sim: RunningSimulator, start_worker: StartWorker
) -> None:
    queries: list[str] = []

    async def log_queries(connection: asyncpg.Connection) -> None:
        await init_connection(connection)  # the gateway pool's own set-up (JSON codecs)
        connection.add_query_logger(lambda record: queries.append(record.query))

    watched = await asyncpg.create_pool(database_url, min_size=0, max_size=4, init=log_queries)
    try:
        ids = await insert_many(pool, 5)
        await start_worker(on_pool=watched)
        await all_submitted(pool, 5)
    finally:
        await watched.close()
    assert await batches_per_reference(sim) == {str(i): 1 for i in ids}
    # The claim read the messages; no separate load ran (its statement names ANY($1::uuid[])).
    assert any("claimed" in query and "sms_recipient" in query for query in queries)
    assert not any("m.id = ANY($1::uuid[])" in query for query in queries)
