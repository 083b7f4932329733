"""The dispatcher against a fresh migrated database and the Sinch simulator on a real socket.

One simulator serves each module (reset per test); each test gets its own database, pool,
pooled httpx client and Sinch client. The Sinch client does not retry on its own (``NO_RETRY``):
retries are the outbox's business, as in the gateway.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest_asyncio

from smsgateway.simulator import SimulatorConfig
from smsgateway.sinch import AiohttpTransport, SinchClient
from smsgateway.workers.outbox import DispatchConfig, OutboxWorker
from tests.integration.dispatch.accepted import open_pool
from tests.integration.dispatch.harness import FAST, READ_TIMEOUT_S, StartWorker, sinch_client
from tests.support.sinch_simulator import PLAN_DEFAULT_FROM, RunningSimulator, running_simulator


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shared_sim() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(
        SimulatorConfig.for_tests(default_from=PLAN_DEFAULT_FROM)
    ) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def sim(shared_sim: RunningSimulator) -> RunningSimulator:
    (await shared_sim.client.post("/_admin/reset")).raise_for_status()
    return shared_sim


@pytest_asyncio.fixture(loop_scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await open_pool(database_url, max_size=20)
    try:
        yield pool
    finally:
        await pool.close()


@pytest_asyncio.fixture(loop_scope="session")
async def second_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """Another pool on the same database, as a second worker process would have."""
    pool = await open_pool(database_url, max_size=10)
    try:
        yield pool
    finally:
        await pool.close()


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """On the gateway's default transport (tests/integration/sinch covers both)."""
    async with httpx.AsyncClient(
        transport=AiohttpTransport(50), timeout=httpx.Timeout(5.0, read=READ_TIMEOUT_S)
    ) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def sinch(http: httpx.AsyncClient, sim: RunningSimulator) -> SinchClient:
    return sinch_client(http, sim)


@pytest_asyncio.fixture(loop_scope="session")
async def start_worker(pool: asyncpg.Pool, sinch: SinchClient) -> AsyncIterator[StartWorker]:
    """``await start_worker(**config)``: an OutboxWorker running until the test ends."""
    running: list[tuple[OutboxWorker, asyncio.Task[None]]] = []

    async def start(
        *, on_pool: asyncpg.Pool | None = None, client: SinchClient | None = None, **config: Any
    ) -> OutboxWorker:
        worker = OutboxWorker(
            on_pool or pool, client or sinch, DispatchConfig(**{**FAST, **config})
        )
        running.append((worker, asyncio.create_task(worker.run())))
        return worker

    try:
        yield start
    finally:
        for worker, task in running:
            await worker.stop(2.0)
            await task
