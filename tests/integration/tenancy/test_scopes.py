"""API key scopes: read for what changes nothing, send for what changes something, admin for
all of it across tenants; a key without the scope gets 403 ``insufficient_scope``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from smsgateway.app import create_app
from smsgateway.domain.api_keys import Scope
from tests.integration.tenancy.harness import ACME_NUMBER, SUBSCRIBER, key, served
from tests.support.asgi import lifespan_client
from tests.support.settings import make_settings

pytestmark = pytest.mark.asyncio


async def test_a_read_only_key_reads_but_sends_and_changes_nothing(database_url: str) -> None:
    reader = await key(database_url, "acme", frozenset({Scope.READ}))
    async with served(database_url) as gateway:
        headers = {"X-API-Key": reader}
        async with httpx.AsyncClient(base_url=gateway.base_url, headers=headers) as client:
            assert (await client.get("/v1/messages")).status_code == 200
            assert (await client.get("/v1/opt-outs")).status_code == 200
            assert (await client.get("/v1/inbound-messages")).status_code == 200
            assert (await client.get("/v1/events")).status_code == 200
            message = {"from": ACME_NUMBER, "to": [SUBSCRIBER], "body": "Hi"}
            assert (await client.post("/v1/messages/preview", json=message)).status_code == 200
            for refused in (
                await client.post("/v1/messages", json=message),
                await client.post("/v1/opt-outs", json={"msisdn": SUBSCRIBER}),
                await client.delete(f"/v1/opt-outs/{SUBSCRIBER}"),
            ):
                assert refused.status_code == 403, refused.text
                assert refused.headers["content-type"] == "application/problem+json"
                problem = refused.json()
                assert problem["code"] == "insufficient_scope"
                assert "'send'" in problem["detail"]
                assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]


async def test_a_send_only_key_sends_but_reads_nothing(database_url: str) -> None:
    sender = await key(database_url, "acme", frozenset({Scope.SEND}))
    async with served(database_url) as gateway:
        headers = {"X-API-Key": sender}
        async with httpx.AsyncClient(base_url=gateway.base_url, headers=headers) as client:
            sent = await client.post(
                "/v1/messages", json={"from": ACME_NUMBER, "to": [SUBSCRIBER], "body": "Hi"}
            )
            assert sent.status_code == 202, sent.text
            assert (await client.post("/v1/opt-outs", json={"msisdn": SUBSCRIBER})).status_code == (
                201
            )
            for path in (
                f"/v1/messages/{sent.json()['id']}",
                "/v1/messages",
                "/v1/opt-outs",
                "/v1/inbound-messages",
            ):
                refused = await client.get(path)
                assert (refused.status_code, refused.json()["code"]) == (
                    403,
                    "insufficient_scope",
                ), path


async def test_every_scoped_operation_documents_its_403(database_url: str) -> None:
    async with lifespan_client(create_app(make_settings(database_url))) as client:
        document: dict[str, Any] = (await client.get("/openapi.json")).json()
    scoped = [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if operation.get("security") and path.startswith("/v1/")
    ]
    assert scoped
    for path, method, operation in scoped:
        assert "403" in operation["responses"], f"{method.upper()} {path}"
