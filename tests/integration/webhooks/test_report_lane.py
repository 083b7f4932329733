"""The report lane answers POST /webhooks/sinch[/<secret>] exactly as the routes do.

Two gateways on one database, served on loopback sockets: one with the lane, one without it
(``report_lane="off"``). Each call goes to both (for a report, each gateway gets its own
message, so that neither sees the other's as a duplicate); status, headers and body must
match, ids and per-request headers aside, and so must what the call did.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from smsgateway.simulator import SimulatorConfig
from tests.integration.webhooks.harness import (
    message,
    recipient_report,
    recipient_states,
    record_batch,
    send_message,
)
from tests.integration.webhooks.test_one_url import (
    generated_secret,
    mo_text,
    real_credentials,
    served,
)
from tests.support.sinch_simulator import running_simulator

pytestmark = pytest.mark.asyncio

ONE_URL = "/webhooks/sinch"
RECIPIENT = "+46701234567"
_PER_REQUEST_HEADERS = frozenset({"x-request-id", "content-length", "date"})
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@asynccontextmanager
async def both(database_url: str, **settings: Any) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    async with (
        served(database_url, **settings) as lane,
        served(database_url, report_lane="off", **settings) as route,
    ):
        yield {"lane": lane, "route": route}


def comparable(response: httpx.Response) -> dict[str, Any]:
    headers = {
        name: "<varies>" if name in _PER_REQUEST_HEADERS else value
        for name, value in response.headers.items()
    }
    body = json.loads(_UUID.sub("<uuid>", response.text)) if response.content else None
    if isinstance(body, dict) and "request_id" in body:
        body["request_id"] = "<varies>"
    return {"status": response.status_code, "headers": headers, "body": body}


async def post_raw(client: httpx.AsyncClient, path: str, content: bytes) -> httpx.Response:
    return await client.post(path, content=content, headers={"content-type": "application/json"})


def delivered(batch_id: str) -> bytes:
    report = recipient_report(
        batch_id, RECIPIENT.removeprefix("+"), "Delivered", 0, "2026-12-03T09:00:01.000Z"
    )
    return json.dumps(report).encode()


async def test_reports_inbound_and_refusals_are_answered_alike(database_url: str) -> None:
    async with both(database_url, webhook_auth="none") as clients:
        answers: dict[str, list[dict[str, Any]]] = {"lane": [], "route": []}
        for name, client in clients.items():
            message_id = await send_message(client, [RECIPIENT])
            batch_id = f"01LANE{name.upper()}{'X' * (20 - len(name))}"
            await record_batch(database_url, message_id, batch_id)
            for content in (
                delivered(batch_id),
                delivered(batch_id),  # a duplicate
                delivered(f"01UNKNOWN{name.upper()}"),  # kept until its batch is known
                json.dumps(mo_text("HELP")).encode(),
                b"[1, 2]",  # not a JSON object: 400
                b"{not json",
            ):
                answers[name].append(comparable(await post_raw(client, ONE_URL, content)))
            assert recipient_states(await message(client, message_id)) == {RECIPIENT: "delivered"}
    assert answers["lane"] == answers["route"]
    statuses = [answer["status"] for answer in answers["lane"]]
    assert statuses == [200, 200, 200, 200, 400, 400]
    assert [answer["body"].get("outcome") for answer in answers["lane"][:3]] == [
        "applied",
        "duplicate",
        "unknown_batch",
    ]


async def test_the_secret_path_and_its_refusals_are_answered_alike(database_url: str) -> None:
    async with (
        running_simulator(SimulatorConfig.for_tests()) as simulator,
        both(database_url, **real_credentials(simulator)) as clients,
    ):
        refusals: dict[str, list[dict[str, Any]]] = {"lane": [], "route": []}
        for name, client in clients.items():
            for path in (ONE_URL, f"{ONE_URL}/{'x' * 43}"):
                response = await post_raw(client, path, json.dumps(mo_text("HELP")).encode())
                refusals[name].append(comparable(response))
        secret = await generated_secret(database_url)
        accepted = {}
        for name, client in clients.items():
            message_id = await send_message(client, [RECIPIENT])
            batch_id = f"01SECRET{name.upper()}{'Y' * (18 - len(name))}"
            await record_batch(database_url, message_id, batch_id)
            response = await post_raw(client, f"{ONE_URL}/{secret}", delivered(batch_id))
            accepted[name] = comparable(response)
            assert recipient_states(await message(client, message_id)) == {RECIPIENT: "delivered"}
    assert refusals["lane"] == refusals["route"]
    assert [refusal["status"] for refusal in refusals["lane"]] == [401, 401]
    assert refusals["lane"][0]["body"]["code"] == "unauthorized"
    assert accepted["lane"] == accepted["route"]
    assert accepted["lane"]["status"] == 200
