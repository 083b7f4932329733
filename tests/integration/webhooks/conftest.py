"""Fixtures for the webhook tests: a gateway (dispatcher off) and an API key for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from smsgateway.app import create_app
from tests.support.api_keys import issue_api_key
from tests.support.asgi import lifespan_client
from tests.support.settings import make_settings


@pytest_asyncio.fixture
async def api_key(database_url: str) -> str:
    return await issue_api_key(database_url, name="operator", tenant="acme")


@pytest_asyncio.fixture
async def gateway(database_url: str, api_key: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(database_url, SINCH_NUMBER="+12025550123")
    async with lifespan_client(create_app(settings)) as client:
        client.headers["X-API-Key"] = api_key
        yield client
