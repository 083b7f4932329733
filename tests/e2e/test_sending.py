"""End to end: POST /v1/messages → outbox → dispatcher → the simulator over sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from smsgateway.app import create_app
from smsgateway.simulator import SimulatorConfig
from tests.support.api_keys import issue_api_key
from tests.support.asgi import lifespan_client
from tests.support.polling import wait_until
from tests.support.settings import simulator_settings
from tests.support.sinch_simulator import PLAN_DEFAULT_FROM, RunningSimulator, running_simulator

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def simulator() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(
        SimulatorConfig.for_tests(default_from=PLAN_DEFAULT_FROM)
    ) as simulator:
        yield simulator


@pytest_asyncio.fixture
async def gateway(
    database_url: str, simulator: RunningSimulator
) -> AsyncIterator[httpx.AsyncClient]:
    key = await issue_api_key(database_url, name="e2e")
    settings = simulator_settings(
        database_url,
        simulator,
        legacy_wait_seconds=5,
    )
    async with lifespan_client(create_app(settings)) as client:
        client.headers["X-API-Key"] = key
        yield client


async def submitted(gateway: httpx.AsyncClient, message_id: str) -> dict[str, object]:
    latest: dict[str, object] = {}

    async def has_batch() -> bool:
        nonlocal latest
        latest = (await gateway.get(f"/v1/messages/{message_id}")).json()
        return latest["sinch_batch_id"] is not None

    await wait_until(has_batch, timeout_s=10, message="the Sinch batch id to be recorded")
    return latest


async def test_an_accepted_message_reaches_sinch_once_and_its_batch_id_is_recorded(
    gateway: httpx.AsyncClient, simulator: RunningSimulator
) -> None:
    accepted = await gateway.post(
        "/v1/messages",
        json={"to": ["+46701234567", "+12015550123"], "body": "Hello", "client_reference": "c1"},
    )
    assert accepted.status_code == 202
    message = await submitted(gateway, accepted.json()["id"])
    assert message["status"] == "submitted"
    assert {r["status"] for r in message["recipients"]} == {"submitted"}  # type: ignore[attr-defined]
    assert [e["kind"] for e in message["events"]] == ["accepted", "submitted"]  # type: ignore[attr-defined]
    # Our id travels as Sinch's client_reference (the caller's own stays with us).
    assert await simulator.batch_count(accepted.json()["id"]) == 1
    batch = (
        await simulator.client.get(simulator.batch_path(str(message["sinch_batch_id"])))
    ).json()
    assert batch["to"] == ["+46701234567", "+12015550123"]
    assert batch["from"] == "+12025550123"
    assert batch["callback_url"].endswith("/webhooks/sinch")


async def test_the_tutorials_send_sms_answers_with_sinchs_batch(
    gateway: httpx.AsyncClient, simulator: RunningSimulator
) -> None:
    response = await gateway.post(
        "/send-sms",
        json={"recipient": "+46701234567", "message": "Hello from the tutorial"},
        headers={"X-Request-ID": "tutorial-1"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"] == "SMS submitted successfully."
    assert body["correlationId"] == "tutorial-1"
    assert body["details"]["to"] == ["+46701234567"]
    assert body["details"]["body"] == "Hello from the tutorial"
    assert len(body["details"]["id"]) == 26
