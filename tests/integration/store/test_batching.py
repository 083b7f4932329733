"""Group commit (store.batching): every caller's item is written, however calls interleave."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from smsgateway.store.batching import LINGER_BELOW, BatchCall, BatchWriter
from tests.integration.dispatch.accepted import open_pool

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    opened = await open_pool(database_url)
    try:
        yield opened
    finally:
        await opened.close()


class PoolThatRunsBesideTheRelease:
    """The real pool; as a batch gives its connection back, ``beside`` runs, so that a task
    it starts takes its first step on the same loop turn the batch's runner finishes on."""

    def __init__(self, pool: asyncpg.Pool, beside: Callable[[], None]) -> None:
        self._pool = pool
        self._beside = beside

    async def acquire(self, *, timeout: float) -> Any:  # noqa: ASYNC109 (asyncpg's own)
        return await self._pool.acquire(timeout=timeout)

    async def release(self, connection: Any) -> None:
        await self._pool.release(connection)
        loop = asyncio.get_running_loop()
        released = loop.create_future()
        loop.call_soon(released.set_result, None)
        loop.call_soon(self._beside)
        await released


async def test_an_item_submitted_as_the_last_batch_ends_is_still_written(
    pool: asyncpg.Pool,
) -> None:
    written: list[list[int]] = []
    late: list[asyncio.Task[None]] = []

    def submit_late() -> None:
        if not late:
            late.append(asyncio.ensure_future(writer.submit(2)))

    async def write(_: Any, items: list[int]) -> None:
        written.append(items)

    wrapped: Any = PoolThatRunsBesideTheRelease(pool, submit_late)
    writer: BatchWriter[int] = BatchWriter(wrapped, write, max_concurrent_writes=1)
    await writer.submit(1)
    await asyncio.wait_for(late[0], timeout=5)

    assert written == [[1], [2]]


async def test_an_item_the_database_refuses_fails_only_its_own_caller(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as connection:
        await connection.execute("CREATE TABLE batching_probe (value text NOT NULL)")

    async def write(connection: Any, items: list[str]) -> None:
        await connection.executemany(
            "INSERT INTO batching_probe (value) VALUES ($1)", [(item,) for item in items]
        )

    # One runner: everything submitted while the first write is in flight shares the second.
    writer: BatchWriter[str] = BatchWriter(pool, write, max_concurrent_writes=1)
    values = [f"item-{n}" for n in range(40)]
    poisoned = {7: "nul \x00 inside", 23: "lone \ud800 surrogate"}
    submitted = [poisoned.get(n, value) for n, value in enumerate(values)]
    outcomes = await asyncio.gather(
        *(writer.submit(value) for value in submitted), return_exceptions=True
    )

    failed = {n for n, outcome in enumerate(outcomes) if isinstance(outcome, BaseException)}
    assert failed == set(poisoned)
    async with pool.acquire() as connection:
        stored = {
            row["value"] for row in await connection.fetch("SELECT value FROM batching_probe")
        }
    assert stored == {value for n, value in enumerate(values) if n not in poisoned}


async def test_a_lingering_batch_takes_the_items_that_arrive_within_its_linger(
    pool: asyncpg.Pool,
) -> None:
    batches: list[list[int]] = []

    async def run(_: Any, items: list[int]) -> list[int]:
        batches.append(items)
        return [item * 10 for item in items]

    lingering = BatchCall(pool, run, max_concurrent_batches=1, linger=0.2)
    eager = BatchCall(pool, run, max_concurrent_batches=1)

    async def spaced(calls: BatchCall[int, int]) -> list[int]:
        first = asyncio.ensure_future(calls.call(1))
        # Arrives after the first batch would have started, had it not lingered; an event
        # loop turn is far less than the 200 ms linger.
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        second = asyncio.ensure_future(calls.call(2))
        return list(await asyncio.gather(first, second))

    assert await spaced(lingering) == [10, 20]
    assert batches == [[1, 2]], "both calls went in the one batch"
    batches.clear()
    assert await spaced(eager) == [10, 20]
    assert batches == [[1], [2]], "without linger the first call goes alone"


async def test_a_lingering_batch_does_not_wait_once_enough_items_are_pending(
    pool: asyncpg.Pool,
) -> None:
    batches: list[list[int]] = []

    async def run(_: Any, items: list[int]) -> list[int]:
        batches.append(items)
        return items

    # A linger far longer than the test: it would time out, were it waited.
    lingering = BatchCall(pool, run, max_concurrent_batches=1, linger=3600)
    calls = [asyncio.ensure_future(lingering.call(n)) for n in range(LINGER_BELOW)]
    assert await asyncio.wait_for(asyncio.gather(*calls), timeout=10) == list(range(LINGER_BELOW))
    assert batches == [list(range(LINGER_BELOW))]
