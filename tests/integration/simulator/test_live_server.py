"""tests/support/live_server: serves on an ephemeral port, and reports a failed startup."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI

from tests.support.live_server import live_server
from tests.support.receiver import WebhookReceiver


@pytest.mark.asyncio(loop_scope="session")
async def test_serves_until_the_block_ends() -> None:
    receiver = WebhookReceiver(default_status=204)
    async with live_server(receiver) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        response = await client.post("/hook", content=b"ping")

    assert base_url.startswith("http://127.0.0.1:")
    assert response.status_code == 204
    assert [request.body for request in receiver.on("/hook")] == [b"ping"]
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(base_url=base_url) as client:
            await client.get("/hook")


@pytest.mark.asyncio(loop_scope="session")
async def test_a_failing_lifespan_is_a_runtime_error() -> None:
    @asynccontextmanager
    async def broken(_app: FastAPI) -> AsyncIterator[None]:
        raise RuntimeError("no database")
        yield  # pragma: no cover

    with pytest.raises(RuntimeError, match="uvicorn failed to start"):
        async with live_server(FastAPI(lifespan=broken)):
            pytest.fail("the block must not run")
