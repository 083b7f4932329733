"""An accepted message reaches Sinch without waiting for the dispatcher's poll."""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from smsgateway.app import create_app
from smsgateway.simulator import SimulatorConfig
from tests.support.api_keys import issue_api_key
from tests.support.asgi import lifespan_client
from tests.support.polling import wait_until
from tests.support.settings import make_settings
from tests.support.sinch_simulator import PLAN_DEFAULT_FROM, RunningSimulator, running_simulator

pytestmark = pytest.mark.asyncio

# The longest poll the settings allow: a message seen within a second was not found by a poll.
POLL_SECONDS = 10.0


@asynccontextmanager
async def gateway(
    database_url: str, simulator: RunningSimulator, *, listen: str
) -> AsyncIterator[httpx.AsyncClient]:
    key = await issue_api_key(database_url, name="wakeup")
    settings = make_settings(
        database_url,
        dispatcher="on",
        dispatch_poll_seconds=POLL_SECONDS,
        dispatch_listen=listen,
        sinch_simulator="on",
        SINCH_BASE_URL=simulator.base_url,
        SINCH_SERVICE_PLAN_ID=simulator.plan_id,
        SINCH_API_TOKEN=simulator.token,
    )
    async with lifespan_client(create_app(settings)) as client:
        client.headers["X-API-Key"] = key
        yield client


async def send(client: httpx.AsyncClient, body: str) -> str:
    accepted = await client.post("/v1/messages", json={"to": "+46701234567", "body": body})
    assert accepted.status_code == 202, accepted.text
    message_id: str = accepted.json()["id"]
    return message_id


async def test_accepted_messages_reach_the_simulator_within_a_second_despite_a_10s_poll(
    database_url: str,
) -> None:
    config = SimulatorConfig.for_tests(default_from=PLAN_DEFAULT_FROM)
    async with (
        running_simulator(config) as simulator,
        gateway(database_url, simulator, listen="on") as client,
    ):
        # Several in a row: each one after the dispatcher went back to its long sleep.
        for number in range(3):
            message_id = await send(client, f"code {number}")
            started = time.monotonic()
            await wait_until(
                functools.partial(_sent, simulator, message_id),
                timeout_s=1.0,
                message=f"message {number} at the simulator",
            )
            assert time.monotonic() - started < 1.0


@pytest.mark.slow
async def test_without_listening_the_message_waits_for_the_poll(database_url: str) -> None:
    # The control: the same set-up with wake-ups off does not deliver within the second.
    config = SimulatorConfig.for_tests(default_from=PLAN_DEFAULT_FROM)
    async with (
        running_simulator(config) as simulator,
        gateway(database_url, simulator, listen="off") as client,
    ):
        # Once a poll has sent this one, the dispatcher sleeps for the whole interval.
        first = await send(client, "first")
        await wait_until(lambda: _sent(simulator, first), timeout_s=POLL_SECONDS + 5)
        message_id = await send(client, "second")
        with pytest.raises(TimeoutError):
            await wait_until(lambda: _sent(simulator, message_id), timeout_s=1.0)


async def _sent(simulator: RunningSimulator, message_id: str) -> bool:
    return await simulator.batch_count(message_id) == 1
