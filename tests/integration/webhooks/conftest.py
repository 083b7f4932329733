"""Fixtures for the webhook tests: a gateway (dispatcher off) and an API key for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest_asyncio

from smsgateway.app import create_app
from smsgateway.services.api_keys import create_api_key
from tests.support.asgi import lifespan_client
from tests.support.settings import make_settings


@pytest_asyncio.fixture
async def api_key(database_url: str) -> str:
    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=1)
    try:
        return (await create_api_key(pool, name="operator", tenant="acme")).key
    finally:
        await pool.close()


@pytest_asyncio.fixture
async def gateway(database_url: str, api_key: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(database_url, SINCH_NUMBER="+12025550123")
    async with lifespan_client(create_app(settings)) as client:
        client.headers["X-API-Key"] = api_key
        yield client
