"""Helpers for the tenancy tests: a gateway on a real socket with two tenants' numbers
assigned, keys of each tenant and an admin key, and inbound messages fed to its webhook."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from smsgateway.app import create_app
from smsgateway.domain.api_keys import ALL_SCOPES, DEFAULT_SCOPES, Scope
from smsgateway.services import tenancy
from tests.integration.callbacks.harness import gateway_settings
from tests.integration.webhooks.harness import INBOUND_PATH
from tests.support.api_keys import issue_api_key
from tests.support.live_server import live_server

ACME_NUMBER = "+12025550101"
ACME_OTHER_NUMBER = "+12025550103"
GLOBEX_NUMBER = "+12025550102"
UNASSIGNED_NUMBER = "+12025550199"
SUBSCRIBER = "+12015550123"


@dataclass
class Gateway:
    """Clients on one served gateway, one per key."""

    base_url: str
    acme: httpx.AsyncClient
    globex: httpx.AsyncClient
    admin: httpx.AsyncClient
    webhook: httpx.AsyncClient

    async def inbound(self, to: str, body: str, *, sender: str = SUBSCRIBER) -> dict[str, Any]:
        """Sinch posting an MO from ``sender`` to our number ``to``."""
        response = await self.webhook.post(
            INBOUND_PATH,
            json={
                "type": "mo_text",
                "id": uuid.uuid4().hex[:26].upper(),
                "from": sender.removeprefix("+"),
                "to": to.removeprefix("+"),
                "body": body,
                "received_at": "2026-12-03T10:05:00.000Z",
            },
        )
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document


async def set_tenant_callback(database_url: str, tenant: str, url: str) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=1)
    try:
        await tenancy.set_tenant_callback_url(pool, tenant, url, allow_private=True)
    finally:
        await pool.close()


async def key(database_url: str, tenant: str, scopes: frozenset[Scope] = DEFAULT_SCOPES) -> str:
    return await issue_api_key(
        database_url, f"{tenant}-{uuid.uuid4().hex[:6]}", tenant=tenant, scopes=scopes
    )


@asynccontextmanager
async def served(database_url: str, **overrides: Any) -> AsyncIterator[Gateway]:
    """The gateway under uvicorn on loopback; acme owns two numbers, globex one."""
    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=1)
    try:
        await tenancy.assign_sender(pool, ACME_NUMBER, "acme")
        await tenancy.assign_sender(pool, ACME_OTHER_NUMBER, "acme")
        await tenancy.assign_sender(pool, GLOBEX_NUMBER, "globex")
    finally:
        await pool.close()
    keys = {
        "acme": await key(database_url, "acme"),
        "globex": await key(database_url, "globex"),
        "admin": await key(database_url, "operations", ALL_SCOPES),
    }
    settings = gateway_settings(
        database_url,
        SINCH_NUMBER=UNASSIGNED_NUMBER,
        allowed_senders=[ACME_NUMBER, ACME_OTHER_NUMBER, GLOBEX_NUMBER],
        **overrides,
    )
    async with live_server(create_app(settings)) as base_url:
        clients = {
            name: httpx.AsyncClient(base_url=base_url, headers={"X-API-Key": secret})
            for name, secret in keys.items()
        }
        webhook = httpx.AsyncClient(base_url=base_url)
        try:
            yield Gateway(base_url, clients["acme"], clients["globex"], clients["admin"], webhook)
        finally:
            for client in (*clients.values(), webhook):
                await client.aclose()


async def send(client: httpx.AsyncClient, sender: str, to: str = SUBSCRIBER) -> str:
    """Sends from ``sender``; the recipient's status at accept (``opted_out`` or queued)."""
    response = await client.post("/v1/messages", json={"from": sender, "to": [to], "body": "Hi"})
    assert response.status_code == 202, response.text
    (recipient,) = response.json()["recipients"]
    status: str = recipient["status"]
    return status
