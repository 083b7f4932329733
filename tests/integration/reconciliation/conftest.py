"""Reconciliation against a fresh migrated database and the Sinch simulator on a real socket.

The simulator's delivery-report callbacks go to a closed port: no report ever arrives by
webhook, as when PUBLIC_BASE_URL is wrong or a firewall is in the way. Every request the
reconciler's Sinch client sends is logged (an httpx event hook), to count the load on Sinch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest_asyncio

from smsgateway.domain.reconciliation import ReconcilePolicy
from smsgateway.services.reconciliation import Reconciler
from smsgateway.simulator import SimulatorConfig
from smsgateway.sinch import AiohttpTransport, SinchClient
from smsgateway.workers.reconciliation import ReconcileConfig, ReconcileWorker
from tests.integration.dispatch.accepted import open_pool
from tests.integration.dispatch.harness import sinch_client
from tests.support.sinch_simulator import PLAN_DEFAULT_FROM, RunningSimulator, running_simulator

# Reconciliation scaled down to test time.
FIRST_CHECK = 0.2
POLICY = ReconcilePolicy(
    first_check=FIRST_CHECK, max_interval=0.4, expiry_grace=timedelta(0), max_lookups=5
)


@dataclass
class RequestLog:
    """Every request a client sent: (monotonic time, method, URL)."""

    requests: list[tuple[float, str, httpx.URL]] = field(default_factory=list)

    async def __call__(self, request: httpx.Request) -> None:
        self.requests.append((time.monotonic(), request.method, request.url))

    def reports(self, batch_id: str | None = None) -> list[tuple[float, httpx.URL]]:
        """Delivery-report requests (batch and per recipient), optionally for one batch."""
        return [
            (at, url)
            for at, method, url in self.requests
            if method == "GET"
            and "/delivery_report" in url.path
            and (batch_id is None or f"/batches/{batch_id}/" in url.path)
        ]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shared_sim() -> AsyncIterator[RunningSimulator]:
    # Slow enough that a first check can find Queued or Dispatched (tests set overrides).
    config = SimulatorConfig.for_tests(delivery_delay_s=0.05, default_from=PLAN_DEFAULT_FROM)
    async with running_simulator(config) as running:
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
async def request_log() -> RequestLog:
    return RequestLog()


@pytest_asyncio.fixture(loop_scope="session")
async def http(request_log: RequestLog) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=AiohttpTransport(50),
        timeout=httpx.Timeout(5.0),
        event_hooks={"request": [request_log]},
    ) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def sinch(http: httpx.AsyncClient, sim: RunningSimulator) -> SinchClient:
    return sinch_client(http, sim)


StartReconciler = Callable[..., Awaitable[ReconcileWorker]]


@pytest_asyncio.fixture(loop_scope="session")
async def start_reconciler(
    pool: asyncpg.Pool, sinch: SinchClient
) -> AsyncIterator[StartReconciler]:
    """``await start_reconciler(on_pool=..., client=..., policy=...)``: a worker running until
    the test ends."""
    running: list[tuple[ReconcileWorker, asyncio.Task[None]]] = []

    async def start(
        *,
        on_pool: asyncpg.Pool | None = None,
        client: SinchClient | None = None,
        policy: ReconcilePolicy = POLICY,
        **config: Any,
    ) -> ReconcileWorker:
        reconciler = Reconciler(on_pool or pool, client or sinch, policy, lease_seconds=5.0)
        settings = {"batch_size": 50, "concurrency": 4, "poll_interval": 0.02, **config}
        worker = ReconcileWorker(reconciler, ReconcileConfig(**settings))
        running.append((worker, asyncio.create_task(worker.run())))
        return worker

    try:
        yield start
    finally:
        for worker, task in running:
            await worker.stop(2.0)
            await task
