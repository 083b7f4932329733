"""End to end: the gateway on a real socket, its dispatcher sending to the simulator, and the
simulator calling back with real delivery reports and inbound messages (duplicates, disorder,
numbers without '+', Sinch's retry schedule, HMAC signing)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from smsgateway.app import create_app
from smsgateway.simulator import SimulatorConfig
from tests.support.api_keys import issue_api_key
from tests.support.live_server import live_server
from tests.support.polling import wait_until
from tests.support.settings import simulator_settings
from tests.support.sinch_simulator import PLAN_DEFAULT_FROM, RunningSimulator, running_simulator

pytestmark = pytest.mark.asyncio

SE = "+46701234567"
US = "+12015550123"
SIGNING_SECRET = "e2e-signing-secret"
DLR_PATH = "/webhooks/sinch/delivery-reports"
INBOUND_PATH = "/webhooks/sinch/inbound"


@dataclass
class LateBoundApp:
    """Serves an app created after the socket is open (its settings need the socket's URL).

    The inner app's lifespan is run by the test, and its state put in each request's scope, as
    uvicorn would. ``refuse_next`` answers that many webhook calls 503 first, as a gateway
    whose database is briefly away would.
    """

    inner: ASGIApp | None = None
    refuse_next: int = 0
    refused: list[str] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        refuse = scope["path"].startswith("/webhooks/") and self.refuse_next > 0
        if self.inner is None or refuse:
            if refuse:
                self.refuse_next -= 1
                self.refused.append(scope["path"])
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.inner(scope, receive, send)


def with_state(app: ASGIApp, state: Mapping[str, Any]) -> ASGIApp:
    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        await app({**scope, "state": dict(state)}, receive, send)

    return asgi


@dataclass(frozen=True)
class Setup:
    gateway: httpx.AsyncClient
    simulator: RunningSimulator
    shim: LateBoundApp
    base_url: str


@asynccontextmanager
async def running(
    database_url: str, *, signed: bool = False, **simulator: object
) -> AsyncIterator[Setup]:
    key = await issue_api_key(database_url, name="e2e")
    shim = LateBoundApp()
    async with live_server(shim) as base_url:
        config: dict[str, object] = {
            "inbound_url": base_url + INBOUND_PATH,
            "default_from": PLAN_DEFAULT_FROM,
            **simulator,
        }
        if signed:
            # With signing on, Sinch calls the plan's URL, whatever the batch says.
            config.update(signing_secret=SIGNING_SECRET, default_callback_url=base_url + DLR_PATH)
        async with running_simulator(SimulatorConfig.for_tests(**config)) as sim:
            settings = simulator_settings(
                database_url,
                sim,
                PUBLIC_BASE_URL=base_url,
                webhook_signing_secret=SIGNING_SECRET if signed else None,
            )
            app = create_app(settings)
            async with app.router.lifespan_context(app) as state:
                shim.inner = with_state(app, state or {})
                async with httpx.AsyncClient(
                    base_url=base_url, headers={"X-API-Key": key}, timeout=10
                ) as client:
                    yield Setup(client, sim, shim, base_url)
                shim.inner = None


async def settled(gateway: httpx.AsyncClient, message_id: str, status: str) -> dict[str, Any]:
    latest: dict[str, Any] = {}

    async def reached() -> bool:
        nonlocal latest
        latest = (await gateway.get(f"/v1/messages/{message_id}")).json()
        return bool(latest["status"] == status)

    await wait_until(reached, timeout_s=10, message=f"message {message_id} to be {status}")
    return latest


async def send(gateway: httpx.AsyncClient, to: list[str], mode: str) -> str:
    response = await gateway.post(
        "/v1/messages", json={"to": to, "body": "Hello", "delivery_report": mode}
    )
    assert response.status_code == 202, response.text
    message_id = response.json()["id"]
    assert isinstance(message_id, str)
    return message_id


def reports_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [event for event in message["events"] if event["kind"] == "delivery_report"]


async def test_per_recipient_reports_with_duplicates_disorder_and_missing_plus(
    database_url: str,
) -> None:
    async with running(
        database_url,
        duplicate_probability=1.0,
        out_of_order_probability=0.5,
        recipient_without_plus_probability=0.5,
    ) as setup:
        overrides = await setup.simulator.client.put(
            "/_admin/outcomes", json={"overrides": {US: "failed"}}
        )
        assert overrides.status_code == 200
        delivered = await send(setup.gateway, [SE], "per_recipient")
        failed = await send(setup.gateway, [US], "per_recipient")
        ok = await settled(setup.gateway, delivered, "delivered")
        ko = await settled(setup.gateway, failed, "failed")
        assert [(r["to"], r["status"], r["code"]) for r in ok["recipients"]] == [
            (SE, "delivered", 0)
        ]
        assert [(r["to"], r["status"], r["code"]) for r in ko["recipients"]] == [
            (US, "failed", 402)
        ]

        async def all_answered() -> bool:
            attempts = await setup.simulator.callback_attempts()
            # Queued, Dispatched and the final, each sent twice, for each message.
            return len(attempts) >= 12

        await wait_until(all_answered, timeout_s=10, message="every callback to be answered")
        attempts = await setup.simulator.callback_attempts()
        assert {attempt["outcome"] for attempt in attempts} == {"delivered"}
        # Each distinct report is stored once: the duplicates changed nothing.
        for message_id in (delivered, failed):
            final = (await setup.gateway.get(f"/v1/messages/{message_id}")).json()
            assert len(reports_of(final)) == 3


@pytest.mark.parametrize("mode", ["per_recipient_final", "summary", "full"])
async def test_each_report_mode_brings_the_message_to_its_final_status(
    database_url: str, mode: str
) -> None:
    async with running(database_url) as setup:
        await setup.simulator.client.put("/_admin/outcomes", json={"overrides": {US: "failed"}})
        message_id = await send(setup.gateway, [SE, US], mode)
        message = await settled(setup.gateway, message_id, "partially_delivered")
        statuses = {r["to"]: r["status"] for r in message["recipients"]}
        if mode == "summary":
            # A mixed summary names no recipients: only the message's status is known.
            assert statuses == {SE: "submitted", US: "submitted"}
        else:
            assert statuses == {SE: "delivered", US: "failed"}
        assert len(reports_of(message)) == (2 if mode == "per_recipient_final" else 1)


async def test_signed_reports_are_verified_and_applied(database_url: str) -> None:
    async with running(database_url, signed=True) as setup:
        message_id = await send(setup.gateway, [SE], "per_recipient")
        await settled(setup.gateway, message_id, "delivered")
        attempts = await setup.simulator.callback_attempts()
        assert {a["http_status"] for a in attempts} == {200}


async def test_reports_refused_with_503_arrive_on_sinchs_retry_schedule(
    database_url: str,
) -> None:
    async with running(database_url) as setup:
        setup.shim.refuse_next = 2
        message_id = await send(setup.gateway, [SE], "per_recipient_final")
        await settled(setup.gateway, message_id, "delivered")
        attempts = await setup.simulator.callback_attempts()
        assert [a["http_status"] for a in attempts] == [503, 503, 200]
        assert [a["attempt"] for a in attempts] == [1, 2, 3]


async def test_an_inbound_stop_keeps_the_number_out_of_later_batches(database_url: str) -> None:
    async with running(database_url) as setup:
        injected = await setup.simulator.client.post(
            "/_admin/inbounds", json={"from": US, "to": "+12025550123", "body": "Stop"}
        )
        assert injected.status_code == 202

        async def opted_out() -> bool:
            # A STOP applies to the number it was sent to: the gateway's SINCH_NUMBER.
            answer = await setup.gateway.get(
                f"/v1/opt-outs/{US}", params={"sender": "+12025550123"}
            )
            return answer.status_code == 200

        await wait_until(opted_out, timeout_s=10, message="the STOP to be applied")
        message_id = await send(setup.gateway, [SE, US], "per_recipient")
        message = await settled(setup.gateway, message_id, "partially_delivered")
        assert {r["to"]: r["status"] for r in message["recipients"]} == {
            SE: "delivered",
            US: "opted_out",
        }
        batch = await setup.simulator.client.get(
            setup.simulator.batch_path(message["sinch_batch_id"])
        )
        assert batch.json()["to"] == [SE]
