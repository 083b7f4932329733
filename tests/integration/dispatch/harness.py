"""Settings and helpers shared by the dispatcher tests (fixtures are in conftest.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from smsgateway.sinch import NO_RETRY, SinchClient
from smsgateway.workers.outbox import OutboxWorker
from tests.support.sinch_simulator import RunningSimulator

# Short enough for the unknown-outcome test, long enough for a loaded loopback.
READ_TIMEOUT_S = 0.5

# Worker settings scaled down to test time: leases of seconds, polls of milliseconds.
FAST: dict[str, Any] = {
    "batch_size": 20,
    "concurrency": 5,
    "lease_seconds": 5.0,
    "poll_interval": 0.02,
    "retry_base_delay": 0.05,
    "retry_max_delay": 0.2,
    "metrics_interval": 0.2,
}

# `await start_worker(on_pool=..., client=..., **DispatchConfig fields)`, from conftest.py.
StartWorker = Callable[..., Awaitable[OutboxWorker]]


def sinch_client(http: httpx.AsyncClient, sim: RunningSimulator) -> SinchClient:
    """A client of the simulator's plan that leaves retries to the outbox, as the gateway does."""
    return SinchClient.for_api_token(
        http,
        service_plan_id=sim.plan_id,
        api_token=sim.token,
        base_url=sim.base_url,
        retry_policy=NO_RETRY,
    )


async def set_faults(sim: RunningSimulator, **settings: object) -> None:
    response = await sim.client.put("/_admin/faults", json=settings)
    assert response.status_code == 200, response.text
