"""Per-key (else per-address) rate limits: 429 problem+json with Retry-After and RateLimit-*."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from smsgateway.app import create_app
from tests.support.api_keys import issue_api_key
from tests.support.asgi import lifespan_client
from tests.support.redis import REDIS_URL, redis_reachable
from tests.support.settings import make_settings

pytestmark = pytest.mark.asyncio

PREVIEW = {"to": "+46701234567", "body": "hi"}


async def make_key(database_url: str, rate: str | None) -> str:
    return await issue_api_key(database_url, name=f"k-{uuid.uuid4().hex[:6]}", rate_limit=rate)


@pytest_asyncio.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(database_url, rate_limit="5/minute")
    async with lifespan_client(create_app(settings)) as client:
        yield client


async def test_a_keys_own_limit_applies_and_is_reported(
    client: httpx.AsyncClient, database_url: str
) -> None:
    key = await make_key(database_url, "3/minute")
    answers = [
        await client.post("/v1/messages/preview", json=PREVIEW, headers={"X-API-Key": key})
        for _ in range(4)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["ratelimit-remaining"] for a in answers[:3]] == ["2", "1", "0"]
    assert answers[0].headers["ratelimit-limit"] == "3"
    sent = await client.post("/v1/messages", json=PREVIEW, headers={"X-API-Key": key})
    assert sent.status_code == 429
    other = await make_key(database_url, "10/minute")
    accepted = await client.post("/v1/messages", json=PREVIEW, headers={"X-API-Key": other})
    assert accepted.status_code == 202
    assert accepted.headers["ratelimit-remaining"] == "9"
    assert accepted.headers["location"].startswith("/v1/messages/")
    refused = answers[3]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60


async def test_keys_are_counted_separately(client: httpx.AsyncClient, database_url: str) -> None:
    first = await make_key(database_url, "1/minute")
    second = await make_key(database_url, "1/minute")
    assert (
        await client.post("/v1/messages/preview", json=PREVIEW, headers={"X-API-Key": first})
    ).status_code == 200
    assert (
        await client.post("/v1/messages/preview", json=PREVIEW, headers={"X-API-Key": second})
    ).status_code == 200
    assert (
        await client.post("/v1/messages/preview", json=PREVIEW, headers={"X-API-Key": first})
    ).status_code == 429


async def test_requests_without_a_valid_key_are_limited_per_address(
    client: httpx.AsyncClient,
) -> None:
    statuses = [
        (
            await client.post(
                "/v1/messages/preview",
                json=PREVIEW,
                headers={"X-API-Key": "sgw_guess_" + str(i) * 40},
            )
        ).status_code
        for i in range(7)
    ]
    assert statuses == [401] * 5 + [429] * 2


@pytest.mark.skipif(not redis_reachable(), reason="no Redis on 127.0.0.1:6379 to share limits")
async def test_two_gateway_processes_share_one_limit_through_redis(database_url: str) -> None:
    key = await make_key(database_url, "4/minute")
    storage = REDIS_URL
    first_app = create_app(make_settings(database_url, rate_limit_storage_url=storage))
    second_app = create_app(make_settings(database_url, rate_limit_storage_url=storage))
    headers = {"X-API-Key": key}
    async with lifespan_client(first_app) as first, lifespan_client(second_app) as second:
        statuses = []
        for client in (first, second, first, second, first, second):
            response = await client.post("/v1/messages/preview", json=PREVIEW, headers=headers)
            statuses.append(response.status_code)
    assert statuses == [200, 200, 200, 200, 429, 429]
