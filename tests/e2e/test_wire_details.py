"""Wire details over sockets: parameters keyed like `to` and tabs in text reach Sinch (the
simulator) as they should; inbound numbers Sinch writes without `+` are stored and found in
E.164."""

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
from tests.support.live_server import live_server
from tests.support.polling import wait_until
from tests.support.settings import make_settings, simulator_settings
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
    settings = simulator_settings(
        database_url,
        simulator,
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


async def test_inbound_numbers_without_plus_are_stored_and_found_in_e164(
    database_url: str, simulator: RunningSimulator
) -> None:
    key = await issue_api_key(database_url, name="inbound")
    app = create_app(make_settings(database_url, dispatcher="off"))
    async with (
        live_server(app) as base_url,
        httpx.AsyncClient(base_url=base_url, headers={"X-API-Key": key}) as gateway,
    ):
        inbound_url = base_url + "/webhooks/sinch/inbound"
        for sender, to, body in (
            ("12015550123", "15550009999", "STOP"),
            ("12015550124", "72345", "hello"),
        ):
            injected = await simulator.client.post(
                "/_admin/inbounds",
                json={"from": sender, "to": to, "body": body, "url": inbound_url},
            )
            assert injected.status_code == 202, injected.text

        async def listed(**params: str) -> list[dict[str, Any]]:
            page = (await gateway.get("/v1/inbound-messages", params=params)).json()
            items: list[dict[str, Any]] = page["items"]
            return items

        async def both_stored() -> bool:
            return len(await listed()) == 2

        await wait_until(both_stored, timeout_s=10, message="both inbounds to be stored")
        for to in ("+15550009999", "15550009999"):
            (item,) = await listed(to=to)
            assert (item["sender"], item["to"], item["keyword"]) == (
                "+12015550123",
                "+15550009999",
                "opt_out",
            )
        for sender in ("+12015550123", "12015550123"):
            assert [item["body"] for item in await listed(**{"from": sender})] == ["STOP"]
        # A short code is kept as given, and found as given.
        assert [item["to"] for item in await listed(to="72345")] == ["72345"]
        # The STOP opted the number out in its E.164 form, which is what sending checks.
        opt_out = await gateway.get("/v1/opt-outs/+12015550123", params={"sender": "15550009999"})
        assert opt_out.status_code == 200
