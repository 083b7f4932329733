"""What reaches Sinch (the simulator, over sockets): parameters keyed like `to`, tabs in text."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from smsgateway.app import create_app
from smsgateway.simulator import SimulatorConfig
from tests.support.api_keys import issue_api_key
from tests.support.asgi import lifespan_client
from tests.support.polling import wait_until
from tests.support.settings import make_settings
from tests.support.sinch_simulator import RunningSimulator, running_simulator

pytestmark = pytest.mark.asyncio

ANN = "+14155550157"
BOB = "+14155550158"


@pytest_asyncio.fixture
async def simulator() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(SimulatorConfig.for_tests()) as simulator:
        yield simulator


@pytest_asyncio.fixture
async def gateway(
    database_url: str, simulator: RunningSimulator
) -> AsyncIterator[httpx.AsyncClient]:
    key = await issue_api_key(database_url, name="wire")
    settings = make_settings(
        database_url,
        dispatcher="on",
        dispatch_poll_seconds=0.02,
        sinch_simulator="on",
        SINCH_BASE_URL=simulator.base_url,
        SINCH_SERVICE_PLAN_ID=simulator.plan_id,
        SINCH_API_TOKEN=simulator.token,
        SINCH_NUMBER="+12025550123",
        legacy_wait_seconds=5,
    )
    async with lifespan_client(create_app(settings)) as client:
        client.headers["X-API-Key"] = key
        yield client


async def sent_batch(
    gateway: httpx.AsyncClient, simulator: RunningSimulator, message_id: str
) -> dict[str, Any]:
    batch_id: str | None = None

    async def has_batch() -> bool:
        nonlocal batch_id
        batch_id = (await gateway.get(f"/v1/messages/{message_id}")).json()["sinch_batch_id"]
        return batch_id is not None

    await wait_until(has_batch, timeout_s=10, message="the Sinch batch id to be recorded")
    assert batch_id is not None
    batch: dict[str, Any] = (await simulator.client.get(simulator.batch_path(batch_id))).json()
    return batch


async def test_parameter_keys_reach_sinch_in_the_form_of_to(
    gateway: httpx.AsyncClient, simulator: RunningSimulator
) -> None:
    accepted = await gateway.post(
        "/v1/messages",
        json={
            "to": ["(415) 555-0157", "415.555.0158"],
            "region": "US",
            "body": "Hi ${name}",
            "parameters": {"name": {"(415) 555-0157": "Ann", "default": "there"}},
        },
    )
    assert accepted.status_code == 202, accepted.text
    batch = await sent_batch(gateway, simulator, accepted.json()["id"])
    assert batch["to"] == [ANN, BOB]
    assert batch["parameters"] == {"name": {ANN: "Ann", "default": "there"}}


async def test_an_opted_out_recipients_key_is_not_handed_to_sinch(
    gateway: httpx.AsyncClient, simulator: RunningSimulator
) -> None:
    assert (await gateway.post("/v1/opt-outs", json={"msisdn": BOB})).status_code == 201
    accepted = await gateway.post(
        "/v1/messages",
        json={
            "to": [ANN, BOB],
            "body": "Hi ${name}",
            "parameters": {"name": {ANN: "Ann", BOB: "Bob", "default": "there"}},
        },
    )
    assert accepted.status_code == 202, accepted.text
    batch = await sent_batch(gateway, simulator, accepted.json()["id"])
    assert batch["to"] == [ANN]
    assert batch["parameters"] == {"name": {ANN: "Ann", "default": "there"}}


async def test_the_tutorials_send_sms_sends_a_tab_as_ucs2(
    gateway: httpx.AsyncClient, simulator: RunningSimulator
) -> None:
    response = await gateway.post(
        "/send-sms", json={"recipient": "+46701234567", "message": "Name:\tAnn"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["details"]["body"] == "Name:\tAnn"
    dry_run = await simulator.client.post(
        f"/xms/v1/{simulator.plan_id}/batches/dry_run?per_recipient=true",
        json={"to": ["+46701234567"], "body": "Name:\tAnn"},
    )
    assert dry_run.json()["per_recipient"][0]["encoding"] == "unicode"


async def test_smart_encoding_sends_a_tab_as_a_space(
    gateway: httpx.AsyncClient, simulator: RunningSimulator
) -> None:
    accepted = await gateway.post(
        "/v1/messages",
        json={"to": "+46701234567", "body": "Name:\tAnn", "smart_encoding": True},
    )
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["encoding"] == "GSM-7"
    batch = await sent_batch(gateway, simulator, accepted.json()["id"])
    assert batch["body"] == "Name: Ann"
