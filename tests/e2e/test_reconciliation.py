"""End to end: a gateway whose PUBLIC_BASE_URL Sinch cannot reach still converges.

The gateway runs its dispatcher (and so its reconciler) against the simulator on a socket; the
batches' callback URL points at a closed port, as a wrong PUBLIC_BASE_URL would, so no
delivery report ever arrives. The messages still end with the status Sinch knows.
"""

from __future__ import annotations

from collections.abc import Awaitable

import httpx
import pytest

from smsgateway.app import create_app
from smsgateway.settings import Settings
from smsgateway.simulator import SimulatorConfig
from tests.support.api_keys import issue_api_key
from tests.support.asgi import lifespan_client
from tests.support.polling import wait_until
from tests.support.settings import simulator_settings
from tests.support.sinch_simulator import running_simulator

pytestmark = pytest.mark.asyncio

SE, US = "+46701234567", "+12015550123"
UNREACHABLE = "http://127.0.0.1:1"


async def test_lost_delivery_reports_are_resolved_by_reconciliation_inside_serve(
    database_url: str,
) -> None:
    key = await issue_api_key(database_url, name="e2e")
    async with running_simulator(SimulatorConfig.for_tests()) as sim:
        await sim.client.put("/_admin/outcomes", json={"overrides": {US: "failed"}})
        settings = simulator_settings(
            database_url,
            sim,
            PUBLIC_BASE_URL=UNREACHABLE,
            reconcile_after_seconds=1,
        )
        app = create_app(settings)
        async with lifespan_client(app) as gateway:
            gateway.headers["X-API-Key"] = key
            sent = await gateway.post(
                "/v1/messages",
                json={"to": [SE, US], "body": "Hello", "delivery_report": "per_recipient"},
            )
            assert sent.status_code == 202, sent.text
            message_id = sent.json()["id"]
            latest: dict[str, object] = {}

            async def settled() -> bool:
                nonlocal latest
                latest = (await gateway.get(f"/v1/messages/{message_id}")).json()
                return latest["status"] == "partially_delivered"

            await wait_until(settled, timeout_s=15, message="reconciled")

        attempts = await sim.callback_attempts()
        assert attempts, "the simulator tried to call back"
        assert all(a["url"].startswith(UNREACHABLE) for a in attempts)  # type: ignore[union-attr]
        assert {a["outcome"] for a in attempts} != {"delivered"}
    recipients = latest["recipients"]
    assert isinstance(recipients, list)
    assert {(r["to"], r["status"], r["code"]) for r in recipients} == {
        (SE, "delivered", 0),
        (US, "failed", 402),
    }
    events = latest["events"]
    assert isinstance(events, list)
    reports = [e for e in events if e["kind"] == "delivery_report"]
    assert [e["detail"]["source"] for e in reports] == ["reconciliation"]


async def test_messages_sent_while_reconciliation_was_off_are_reconciled_once_it_is_on(
    database_url: str,
) -> None:
    key = await issue_api_key(database_url, name="e2e")
    async with running_simulator(SimulatorConfig.for_tests()) as sim:
        await sim.client.put("/_admin/outcomes", json={"overrides": {US: "failed"}})

        def settings(reconcile: str) -> Settings:
            return simulator_settings(
                database_url,
                sim,
                PUBLIC_BASE_URL=UNREACHABLE,
                reconcile=reconcile,
                reconcile_after_seconds=1,
            )

        async def status_of(gateway: httpx.AsyncClient, message_id: str) -> str:
            status: str = (await gateway.get(f"/v1/messages/{message_id}")).json()["status"]
            return status

        async with lifespan_client(create_app(settings("off"))) as gateway:
            gateway.headers["X-API-Key"] = key
            sent = await gateway.post(
                "/v1/messages",
                json={"to": [SE, US], "body": "Hello", "delivery_report": "per_recipient"},
            )
            assert sent.status_code == 202, sent.text
            message_id = sent.json()["id"]
            await wait_until(
                lambda: _is(status_of(gateway, message_id), "submitted"),
                timeout_s=10,
                message="submitted with reconciliation off",
            )

        async with lifespan_client(create_app(settings("on"))) as gateway:
            gateway.headers["X-API-Key"] = key
            await wait_until(
                lambda: _is(status_of(gateway, message_id), "partially_delivered"),
                timeout_s=15,
                message="reconciled once switched on",
            )


async def _is(status: Awaitable[str], expected: str) -> bool:
    return await status == expected
