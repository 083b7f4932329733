"""A batch never goes to Sinch without ``from`` unless the operator declared the plan's default
originator: the gateway (real Postgres, dispatcher on) against the recording stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from smsgateway.app import create_app
from tests.support.api_keys import issue_api_key
from tests.support.asgi import lifespan_client
from tests.support.polling import wait_until
from tests.support.recording_sinch import RecordingSinch, running_recording_sinch
from tests.support.settings import make_settings

pytestmark = pytest.mark.asyncio

MESSAGE = {"to": ["+46701234567"], "body": "Hej"}


@asynccontextmanager
async def gateway(
    database_url: str, sinch: RecordingSinch, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway on a (fake) real Sinch account: the stand-in, with the given settings."""
    settings = make_settings(
        database_url,
        **{
            "dispatcher": "on",
            "dispatch_poll_seconds": 0.02,
            "SINCH_BASE_URL": sinch.base_url,
            "SINCH_SERVICE_PLAN_ID": sinch.plan_id,
            "SINCH_API_TOKEN": sinch.token,
            "PUBLIC_BASE_URL": "https://gw.example.com",
            **overrides,
        },
    )
    assert not settings.uses_simulator
    key = await issue_api_key(database_url, f"key-{id(settings)}", tenant="golive")
    async with lifespan_client(create_app(settings)) as client:
        client.headers["X-API-Key"] = key
        yield client


async def message_when(client: httpx.AsyncClient, message_id: str, status: str) -> dict[str, Any]:
    latest: dict[str, Any] = {}

    async def reached() -> bool:
        nonlocal latest
        latest = (await client.get(f"/v1/messages/{message_id}")).json()
        return bool(latest["status"] == status)

    await wait_until(reached, timeout_s=10, message=f"message {status}")
    return latest


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/preview"])
async def test_no_sender_and_no_default_originator_is_refused(database_url: str, path: str) -> None:
    async with (
        running_recording_sinch() as sinch,
        gateway(database_url, sinch) as client,
    ):
        refused = await client.post(path, json=MESSAGE)
        # A sender the caller names is still fine (allowed senders apply as before).
        allowed = await client.post(path, json={**MESSAGE, "from": "ACME"})
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["code"] == "sender_required"
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [
        ("body.from", "sender_required")
    ]
    assert "SINCH_NUMBER" in problem["detail"]
    assert allowed.status_code == 422
    assert allowed.json()["code"] == "sender_not_allowed"
    assert sinch.sent_batches() == []


async def test_an_allowed_sender_named_by_the_caller_goes_as_from(database_url: str) -> None:
    async with (
        running_recording_sinch() as sinch,
        gateway(database_url, sinch, allowed_senders=["ACME"]) as client,
    ):
        accepted = await client.post("/v1/messages", json={**MESSAGE, "from": "ACME"})
        assert accepted.status_code == 202, accepted.text
        await message_when(client, accepted.json()["id"], "submitted")
    [batch] = sinch.sent_batches()
    assert batch["from"] == "ACME"


async def test_a_declared_default_originator_lets_the_batch_go_without_from(
    database_url: str,
) -> None:
    async with (
        running_recording_sinch(default_originator="+15550009999") as sinch,
        gateway(database_url, sinch, sinch_default_originator=True) as client,
    ):
        preview = await client.post("/v1/messages/preview", json=MESSAGE)
        accepted = await client.post("/v1/messages", json=MESSAGE)
        assert accepted.status_code == 202, accepted.text
        await message_when(client, accepted.json()["id"], "submitted")
    assert preview.status_code == 200
    assert preview.json()["sender"] is None
    [batch] = sinch.sent_batches()
    assert "from" not in batch


async def test_the_dispatcher_rejects_a_queued_message_without_a_sender_unsent(
    database_url: str,
) -> None:
    async with running_recording_sinch() as sinch:
        # Accepted while the plan was declared to have a default originator (dispatcher off)...
        async with gateway(
            database_url, sinch, sinch_default_originator=True, dispatcher="off"
        ) as client:
            accepted = await client.post("/v1/messages", json=MESSAGE)
            assert accepted.status_code == 202, accepted.text
        # ...and dispatched after that declaration was withdrawn.
        async with gateway(database_url, sinch) as client:
            message = await message_when(client, accepted.json()["id"], "rejected")
    assert sinch.sent_batches() == []
    ended = message["events"][-1]
    assert ended["kind"] == "rejected"
    assert ended["detail"]["code"] == "sender_required"


async def test_openapi_documents_sender_required(database_url: str) -> None:
    async with running_recording_sinch() as sinch, gateway(database_url, sinch) as client:
        document = (await client.get("/openapi.json")).json()
    send = document["paths"]["/v1/messages"]["post"]
    preview = document["paths"]["/v1/messages/preview"]["post"]
    assert "422 `sender_required`" in send["description"]
    assert "`sender_required`" in preview["description"]
    assert "422" in send["responses"]
