"""The Sinch client against the Sinch simulator over real loopback sockets.

One simulator serves each test module (starting uvicorn per test would dominate the run);
each test gets it reset. Clients are built per test on their own pooled ``httpx.AsyncClient``,
once per transport (aiohttp's pool, the default, and httpx's, sharded), with a retry policy whose
sleep is recorded instead of waited, so Retry-After and backoff can be asserted without making
the suite slow. Every byte still goes over a socket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from smsgateway.simulator import SimulatorConfig
from smsgateway.sinch import RetryPolicy, SinchClient
from tests.integration.sinch.sinch_live import (
    OAUTH_KEY_ID,
    OAUTH_KEY_SECRET,
    OAUTH_PROJECT,
    READ_TIMEOUT_S,
    TRANSPORTS,
    MakeClient,
    RecordedSleep,
    RequestLog,
    pooled_transport,
)
from tests.support.sinch_simulator import PLAN_DEFAULT_FROM, RunningSimulator, running_simulator


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shared_sim() -> AsyncIterator[RunningSimulator]:
    config = SimulatorConfig.for_tests(
        default_from=PLAN_DEFAULT_FROM,
        oauth_clients={OAUTH_KEY_ID: OAUTH_KEY_SECRET},
        oauth_project_ids=frozenset({OAUTH_PROJECT}),
    )
    async with running_simulator(config) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def sim(shared_sim: RunningSimulator) -> RunningSimulator:
    (await shared_sim.client.post("/_admin/reset")).raise_for_status()
    return shared_sim


@pytest.fixture
def recorded_sleep() -> RecordedSleep:
    return RecordedSleep()


@pytest.fixture
def request_log() -> RequestLog:
    return RequestLog()


@pytest.fixture
def policy(recorded_sleep: RecordedSleep) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=3,
        base_delay=0.05,
        max_delay=0.2,
        max_retry_after=30.0,
        deadline=60.0,
        sleep=recorded_sleep,
    )


@pytest_asyncio.fixture(loop_scope="session", params=TRANSPORTS)
async def http(
    request: pytest.FixtureRequest, request_log: RequestLog
) -> AsyncIterator[httpx.AsyncClient]:
    """The pooled client a gateway process would own, with a short read timeout, on each
    transport the gateway can use: every live test runs on both."""
    async with httpx.AsyncClient(
        transport=pooled_transport(request.param, 50),
        timeout=httpx.Timeout(5.0, read=READ_TIMEOUT_S),
        event_hooks={"request": [request_log]},
    ) as client:
        yield client


@pytest.fixture
def make_client(sim: RunningSimulator, http: httpx.AsyncClient, policy: RetryPolicy) -> MakeClient:
    """``make_client(**overrides)``: an API-token client for the simulator's plan."""

    def factory(**overrides: Any) -> SinchClient:
        options: dict[str, Any] = {
            "service_plan_id": sim.plan_id,
            "api_token": sim.token,
            "base_url": sim.base_url,
            "retry_policy": policy,
        }
        options.update(overrides)
        return SinchClient.for_api_token(http, **options)

    return factory


@pytest.fixture
def client(make_client: MakeClient) -> SinchClient:
    return make_client()
