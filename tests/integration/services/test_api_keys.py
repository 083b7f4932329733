from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import pytest_asyncio
from fastapi import APIRouter

from smsgateway.api.auth import CurrentKey
from smsgateway.app import create_app
from smsgateway.services.api_keys import (
    ApiKeyAuthenticator,
    InvalidRateLimitError,
    create_api_key,
    ensure_development_key,
    list_api_keys,
    revoke_api_key,
)
from smsgateway.store.api_keys import ApiKeyNameTakenError
from tests.support.asgi import lifespan_client
from tests.support.settings import make_settings

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


async def test_only_a_hash_and_a_prefix_are_stored(pool: asyncpg.Pool) -> None:
    created = await create_api_key(pool, name="billing", rate_limit="600/minute")
    row = await pool.fetchrow("SELECT * FROM api_key WHERE name = 'billing'")
    assert row is not None
    stored = " ".join(str(value) for value in row.values())
    assert created.key not in stored
    assert created.key[12:] not in stored
    assert row["prefix"] == created.key[:12]
    assert row["tenant"] == "billing"
    assert row["rate_limit"] == "600/minute"


async def test_names_are_unique_and_rates_must_parse(pool: asyncpg.Pool) -> None:
    await create_api_key(pool, name="dup")
    with pytest.raises(ApiKeyNameTakenError):
        await create_api_key(pool, name="dup")
    with pytest.raises(InvalidRateLimitError):
        await create_api_key(pool, name="fast", rate_limit="lots")


async def test_authenticate_accepts_the_key_and_refuses_look_alikes(pool: asyncpg.Pool) -> None:
    created = await create_api_key(pool, name="svc", tenant="acme")
    authenticator = ApiKeyAuthenticator(pool)
    record = await authenticator.authenticate(created.key)
    assert record is not None
    assert record.tenant == "acme"
    forged = created.key[:12] + "A" * (len(created.key) - 12)
    assert await authenticator.authenticate(forged) is None
    assert await authenticator.authenticate("not-a-key") is None


async def test_callers_that_miss_together_share_one_look_up(database_url: str) -> None:
    queries: list[str] = []

    async def count_queries(connection: asyncpg.Connection) -> None:
        connection.add_query_logger(lambda record: queries.append(record.query))

    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=8, init=count_queries)
    try:
        created = await create_api_key(pool, name="busy", tenant="acme")
        authenticator = ApiKeyAuthenticator(pool)
        queries.clear()
        callers = [asyncio.create_task(authenticator.authenticate(created.key)) for _ in range(50)]
        # One turn of the loop brings every caller to its wait; then the first one goes away
        # while the look-up runs: the others still get their answer.
        await asyncio.sleep(0)
        callers[0].cancel()
        answers = await asyncio.gather(*callers[1:])
        assert {record.id for record in answers if record is not None} == {answers[0].id}
        assert None not in answers
        assert len([query for query in queries if "api_key" in query]) == 1
        # Cached now: no query at all.
        assert await authenticator.authenticate(created.key) is not None
        assert len([query for query in queries if "api_key" in query]) == 1
    finally:
        await pool.close()


async def test_a_revoked_key_stops_working_once_the_cache_expires(pool: asyncpg.Pool) -> None:
    created = await create_api_key(pool, name="leaky")
    uncached = ApiKeyAuthenticator(pool, ttl_seconds=0)
    assert await uncached.authenticate(created.key) is not None
    revoked = await revoke_api_key(pool, "leaky")
    assert revoked is not None
    assert revoked.revoked_at is not None
    assert await uncached.authenticate(created.key) is None
    assert [key.name for key in await list_api_keys(pool) if key.is_active] == []


async def test_the_development_key_is_made_only_on_an_empty_table(pool: asyncpg.Pool) -> None:
    first = await ensure_development_key(pool)
    assert first is not None
    assert first.record.name == "development"
    assert await ensure_development_key(pool) is None


protected = APIRouter()


@protected.get("/test/whoami")
async def whoami(key: CurrentKey) -> dict[str, str]:
    return {"tenant": key.tenant}


@pytest_asyncio.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(database_url))
    app.include_router(protected)
    async with lifespan_client(app) as client:
        yield client


async def test_keys_are_accepted_as_bearer_or_x_api_key(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    created = await create_api_key(pool, name="caller", tenant="t1")
    bearer = await client.get("/test/whoami", headers={"Authorization": f"Bearer {created.key}"})
    header = await client.get("/test/whoami", headers={"X-API-Key": created.key})
    assert bearer.json() == header.json() == {"tenant": "t1"}


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"X-API-Key": "sgw_" + "x" * 43}, "invalid_api_key"),
        ({"Authorization": "Bearer nonsense"}, "invalid_api_key"),
    ],
)
async def test_a_missing_or_wrong_key_is_a_401_problem(
    client: httpx.AsyncClient, headers: dict[str, str], code: str
) -> None:
    response = await client.get("/test/whoami", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["code"] == code
