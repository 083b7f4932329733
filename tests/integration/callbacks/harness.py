"""Helpers for the callback tests: a gateway with callbacks on, a receiver on a real socket,
a callback worker with test-sized delays, and feeding delivery reports."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx

from smsgateway.app import create_app
from smsgateway.domain.backoff import BackoffPolicy
from smsgateway.domain.standard_webhooks import SigningSecret
from smsgateway.services.callbacks import CallbackDeliverer, CallbackPolicy
from smsgateway.store.pool import create_pool
from smsgateway.workers.callbacks import CallbackWorker, CallbackWorkerConfig
from tests.integration.webhooks.harness import (
    fetch,
    post_report,
    recipient_report,
    record_batch,
    send_message,
)
from tests.support.asgi import lifespan_client
from tests.support.settings import make_settings

# whsec_ + base64 of 32 bytes: what `smsgateway callback-secret` prints.
SECRET = "whsec_dGVzdC1jYWxsYmFjay1zZWNyZXQtMDEyMzQ1Njc4OTA="
SE = "+46701234567"
US = "+12015550123"


def gateway_settings(database_url: str, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "SINCH_NUMBER": "+12025550123",
        "callback_signing_secrets": [SECRET],
        "callback_allow_private_targets": True,
        **overrides,
    }
    return make_settings(database_url, **values)


@asynccontextmanager
async def gateway(
    database_url: str, api_key: str, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(gateway_settings(database_url, **overrides))
    async with lifespan_client(app) as client:
        client.headers["X-API-Key"] = api_key
        yield client


@asynccontextmanager
async def callback_worker(
    database_url: str,
    *,
    allow_private: bool = True,
    max_age_s: float = 60.0,
    timeout_s: float = 2.0,
    concurrency: int = 8,
    per_host: int = 4,
    secrets: tuple[str, ...] = (SECRET,),
) -> AsyncIterator[CallbackWorker]:
    """A worker whose retries come back within tens of milliseconds."""
    pool = await create_pool(
        database_url, min_size=0, max_size=4, command_timeout=5.0, connect_timeout=2.0
    )
    http = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False, trust_env=False)
    policy = CallbackPolicy(
        secrets=tuple(SigningSecret.parse(secret) for secret in secrets),
        allow_private=allow_private,
        timeout_seconds=timeout_s,
        backoff=BackoffPolicy(
            base_delay=0.05,
            max_delay=0.2,
            max_retry_after=0.2,
            max_age=timedelta(seconds=max_age_s),
        ),
    )
    config = CallbackWorkerConfig(
        concurrency=concurrency,
        per_host=per_host,
        batch_size=50,
        lease_seconds=timeout_s + 5.0,
        poll_interval=0.02,
    )
    worker = CallbackWorker(pool, CallbackDeliverer(pool, http, policy, config.worker_id), config)
    running = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        await worker.stop(1.0)
        await running
        await http.aclose()
        await pool.close()


async def sent_message(
    client: httpx.AsyncClient,
    database_url: str,
    *,
    to: tuple[str, ...] = (SE,),
    batch_id: str | None = None,
    **fields: object,
) -> tuple[str, str]:
    """A message handed to Sinch (batch id recorded as the dispatcher does): (id, batch id)."""
    message_id = await send_message(client, to, delivery_report="per_recipient", **fields)
    batch = batch_id or f"BATCH{uuid.uuid4().hex[:20].upper()}"
    await record_batch(database_url, message_id, batch)
    return message_id, batch


async def report(
    client: httpx.AsyncClient,
    batch_id: str,
    message_id: str,
    status: str,
    code: int,
    at: str,
    recipient: str = SE,
) -> str:
    """Posts one per-recipient report; returns the gateway's outcome."""
    response = await post_report(
        client,
        recipient_report(batch_id, recipient, status, code, at, client_reference=message_id),
    )
    assert response.status_code == 200, response.text
    outcome = response.json()["outcome"]
    assert isinstance(outcome, str)
    return outcome


async def event_rows(database_url: str, message_id: str) -> list[dict[str, Any]]:
    rows = await fetch(
        database_url,
        "SELECT id, sequence, status, attempts, payload FROM callback_event"
        " WHERE message_id = $1 ORDER BY sequence",
        uuid.UUID(message_id),
    )
    return [dict(row) for row in rows]


@asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """A TCP server that accepts connections and never answers: a hung receiver."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
