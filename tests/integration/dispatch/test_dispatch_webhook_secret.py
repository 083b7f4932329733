"""A Sinch refusal that quotes the batch's callback_url never stores the webhook secret where
API-key holders read it (status detail, events)."""

from __future__ import annotations

import json

import asyncpg
import httpx
import pytest
from starlette.types import Receive, Scope, Send

from smsgateway.services.dispatch import Dispatcher, DispatchOutcome, DispatchPolicy
from smsgateway.sinch import NO_RETRY, SinchClient
from tests.integration.dispatch.accepted import insert_accepted, message_row
from tests.integration.dispatch.test_dispatch_service import claim
from tests.support.live_server import live_server

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRET = "q7Yd0mR2c9LxV4sKf1HbT8uWzE3nJ6pA"
CALLBACK_URL = f"https://gw.example.com/webhooks/sinch/{SECRET}"


async def quoting_sinch(scope: Scope, receive: Receive, send: Send) -> None:
    """A Sinch that refuses every batch with a text quoting its callback_url."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    url = json.loads(body)["callback_url"]
    answer = json.dumps(
        {"code": "syntax_invalid_parameter_format", "text": f"callback_url {url} is refused"}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": answer})


async def test_a_refusal_quoting_the_callback_url_is_stored_without_the_secret(
    pool: asyncpg.Pool,
) -> None:
    async with (
        live_server(quoting_sinch) as base_url,
        httpx.AsyncClient() as http,
    ):
        sinch = SinchClient.for_api_token(
            http,
            service_plan_id="plan",
            api_token="token",
            base_url=base_url,
            retry_policy=NO_RETRY,
        )
        async with pool.acquire() as connection:
            message_id = await insert_accepted(connection, ["+15551230001"])
        dispatcher = Dispatcher(
            pool, sinch, DispatchPolicy(dlr_callback_url=CALLBACK_URL, lease_seconds=10.0)
        )
        outcome = await dispatcher.dispatch(await claim(pool, message_id))
    assert outcome is DispatchOutcome.REJECTED
    async with pool.acquire() as connection:
        row = await message_row(connection, message_id)
    assert row.status_code == "syntax_invalid_parameter_format"
    assert row.status_detail == "callback_url https://gw.example.com/webhooks/sinch/*** is refused"
    assert SECRET not in json.dumps(row.events)
