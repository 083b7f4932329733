"""Fixtures for the callback tests: API keys of two tenants and a receiver on a real socket."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.integration.callbacks.harness import SECRET
from tests.support.api_keys import issue_api_key
from tests.support.live_server import live_server
from tests.support.receiver import WebhookReceiver, standard_webhooks_check


@pytest_asyncio.fixture
async def api_key(database_url: str) -> str:
    return await issue_api_key(database_url, name="operator", tenant="acme")


@pytest_asyncio.fixture
async def other_api_key(database_url: str) -> str:
    return await issue_api_key(database_url, name="intruder", tenant="globex")


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[tuple[WebhookReceiver, str]]:
    """A recording receiver and its base URL (http://127.0.0.1:<port>): it verifies every
    request with the ``standardwebhooks`` library and the gateway's secret, as callers do."""
    recorder = WebhookReceiver(check=standard_webhooks_check(SECRET))
    async with live_server(recorder) as base_url:
        yield recorder, base_url
