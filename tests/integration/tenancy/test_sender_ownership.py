"""A tenant sends from its own numbers and unassigned ones, never from another tenant's (whose
replies and STOPs that number carries); admin keys send from any. Over real sockets."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from smsgateway.services import tenancy
from tests.integration.tenancy.harness import (
    ACME_NUMBER,
    GLOBEX_NUMBER,
    SUBSCRIBER,
    UNASSIGNED_NUMBER,
    send,
    served,
)
from tests.support.polling import wait_until

pytestmark = pytest.mark.asyncio


def _message(sender: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"to": [SUBSCRIBER], "body": "Hi"}
    return body if sender is None else {**body, "from": sender}


async def _refused(client: httpx.AsyncClient, path: str, sender: str | None) -> dict[str, Any]:
    response = await client.post(path, json=_message(sender))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["code"] == "sender_of_another_tenant"
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [
        ("body.from", "sender_of_another_tenant")
    ]
    # The other tenant's name is not given away.
    assert "globex" not in response.text
    return problem


async def _messages_of(client: httpx.AsyncClient) -> int:
    return len((await client.get("/v1/messages")).json()["items"])


async def test_a_tenant_cannot_send_or_preview_from_another_tenants_number(
    database_url: str,
) -> None:
    async with served(database_url) as gateway:
        for path in ("/v1/messages", "/v1/messages/preview"):
            await _refused(gateway.acme, path, GLOBEX_NUMBER)
        assert await _messages_of(gateway.acme) == 0

        # Its own numbers, unassigned ones and the (unassigned) default sender stay open.
        assert await send(gateway.acme, ACME_NUMBER) == "queued"
        assert await send(gateway.acme, UNASSIGNED_NUMBER) == "queued"
        default = await gateway.acme.post("/v1/messages", json=_message(None))
        assert default.status_code == 202, default.text
        assert default.json()["sender"] == UNASSIGNED_NUMBER
        # The owner itself, and an admin key, send from it.
        assert await send(gateway.globex, GLOBEX_NUMBER) == "queued"
        assert await send(gateway.admin, GLOBEX_NUMBER) == "queued"


async def _default_sender_answers(client: httpx.AsyncClient, status: int) -> bool:
    return (await client.post("/v1/messages", json=_message(None))).status_code == status


async def test_the_default_sender_once_assigned_is_its_tenants_only(database_url: str) -> None:
    # Assignments are re-read every policy_refresh_seconds: a change shows within that.
    async with served(database_url, policy_refresh_seconds=0.2) as gateway:
        pool = await asyncpg.create_pool(database_url, min_size=0, max_size=1)
        try:
            assert await _default_sender_answers(gateway.acme, 202)
            await tenancy.assign_sender(pool, UNASSIGNED_NUMBER, "globex")
            await wait_until(
                lambda: _default_sender_answers(gateway.acme, 422),
                timeout_s=5,
                interval_s=0.05,
                message="the assignment to take effect",
            )
            problem = await _refused(gateway.acme, "/v1/messages", None)
            assert "default sender" in problem["detail"]
            # An explicit number of its own still works; the new owner keeps the default.
            assert await send(gateway.acme, ACME_NUMBER) == "queued"
            assert (await gateway.globex.post("/v1/messages", json=_message(None))).status_code == (
                202
            )
            # Unassigned again: open to every tenant, as before.
            await tenancy.unassign_sender(pool, UNASSIGNED_NUMBER)
            await wait_until(
                lambda: _default_sender_answers(gateway.acme, 202),
                timeout_s=5,
                interval_s=0.05,
                message="the unassignment to take effect",
            )
        finally:
            await pool.close()


async def test_the_refusal_is_in_the_catalogue_and_on_the_documented_422(
    database_url: str,
) -> None:
    async with served(database_url) as gateway:
        meaning = await gateway.acme.get("/problems/sender_of_another_tenant")
        assert meaning.status_code == 200
        assert meaning.json()["status"] == 422
        document = (await gateway.acme.get("/openapi.json")).json()
        for path in ("/v1/messages", "/v1/messages/preview"):
            assert "422" in document["paths"][path]["post"]["responses"]


async def test_the_tutorial_route_names_no_message_field_for_another_tenants_default_sender(
    database_url: str,
) -> None:
    # POST /send-sms always sends from the default sender, a number its body cannot name: the
    # refusal is about the request as a whole, not the text in `message`.
    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=1)
    try:
        await tenancy.assign_sender(pool, UNASSIGNED_NUMBER, "globex")
    finally:
        await pool.close()
    async with served(database_url) as gateway:
        response = await gateway.acme.post(
            "/send-sms", json={"recipient": SUBSCRIBER, "message": "Hi"}
        )
        assert response.status_code == 400, response.text
        problem = response.json()
        assert problem["code"] == "sender_of_another_tenant"
        assert [(e["field"], e["code"]) for e in problem["errors"]] == [
            ("body", "sender_of_another_tenant")
        ]
        assert problem["error"] == problem["detail"]
        assert await _messages_of(gateway.acme) == 0
