"""Velocity counters in Redis (SMSGW_PROTECTION_COUNTERS_URL): two gateway app instances share
them, a refused message takes nothing, and a message the write does not store gives back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from smsgateway.app import create_app
from smsgateway.observability.protection_metrics import COUNTER_FALLBACKS
from smsgateway.services.drafting import destinations_from_settings
from smsgateway.services.protection import PolicyBook, set_policy
from smsgateway.store.redis_counters import KEY_PREFIX
from tests.support.api_keys import issue_api_key
from tests.support.asgi import lifespan_client
from tests.support.polling import wait_until
from tests.support.redis import REDIS_URL, needs_redis
from tests.support.settings import make_settings

pytestmark = [pytest.mark.asyncio, needs_redis]

SAME_PREFIX = [f"+46701234{n:03d}" for n in range(6)]
PREFIX_KEY = "velocity:{tenant}:prefix:+46701234"


async def put_policy(database_url: str, tenant: str, document: dict[str, Any]) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=1)
    try:
        book = PolicyBook(pool, destinations_from_settings(make_settings(database_url)))
        await set_policy(pool, book, tenant=tenant, document=document, changed_by="test:operator")
    finally:
        await pool.close()


@asynccontextmanager
async def gateway(database_url: str, key: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        make_settings(database_url, protection_counters_url=REDIS_URL, policy_refresh_seconds=0.05)
    )
    async with lifespan_client(app) as client:
        client.headers["X-API-Key"] = key
        yield client


async def send(client: httpx.AsyncClient, to: str, **extra: Any) -> httpx.Response:
    return await client.post("/v1/messages", json={"to": to, "body": "Code 123456", **extra})


async def prefix_level(tenant: str) -> float:
    redis = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        stored = await redis.hget(KEY_PREFIX + PREFIX_KEY.format(tenant=tenant), "amount")
    finally:
        await redis.aclose()
    return 0.0 if stored is None else float(stored)


async def new_tenant(database_url: str, policy: dict[str, Any]) -> tuple[str, str]:
    tenant = f"t{uuid.uuid4().hex[:10]}"
    key = await issue_api_key(database_url, name="otp", tenant=tenant)
    await put_policy(database_url, tenant, policy)
    return tenant, key


async def test_a_burst_to_one_prefix_is_stopped_across_two_gateways_and_passes_later(
    database_url: str,
) -> None:
    tenant, key = await new_tenant(
        database_url,
        {"velocity": {"per_prefix": 3, "prefix_digits_dropped": 3, "window_seconds": 2}},
    )
    async with gateway(database_url, key) as first, gateway(database_url, key) as second:
        answers = [
            await send(client, to)
            for client, to in zip((first, second, first, second, first), SAME_PREFIX, strict=False)
        ]
        assert [a.status_code for a in answers] == [202, 202, 202, 422, 422]
        refused = answers[3].json()
        assert refused["code"] == "velocity_limited"
        assert 1 <= int(answers[3].headers["Retry-After"]) <= 2
        # Refused messages took nothing: the bucket holds the three sent (less a drain).
        assert 2.5 < await prefix_level(tenant) <= 3.0
        preview = await second.post(
            "/v1/messages/preview", json={"to": SAME_PREFIX[5], "body": "Code 123456"}
        )
        assert [r["code"] for r in preview.json()["limited"]] == ["velocity_limited"]
        # Postgres holds no velocity counter: Redis does.
        connection = await asyncpg.connect(database_url)
        try:
            in_postgres = await connection.fetchval(
                "SELECT count(*) FROM protection_counter WHERE starts_with(key, 'velocity:')"
            )
        finally:
            await connection.close()
        assert in_postgres == 0

        async def passes_again() -> bool:
            return (await send(second, SAME_PREFIX[5])).status_code == 202

        await wait_until(passes_again, timeout_s=10, message="the prefix's window to drain")


async def test_a_message_a_spend_cap_refuses_gives_its_velocity_back(database_url: str) -> None:
    tenant, key = await new_tenant(
        database_url,
        {
            "velocity": {"per_prefix": 10, "prefix_digits_dropped": 3},
            "spend": {"daily_segments": 1},
        },
    )
    async with gateway(database_url, key) as client:
        assert (await send(client, SAME_PREFIX[0])).status_code == 202
        capped = await send(client, SAME_PREFIX[1])
        assert capped.status_code == 422
        assert capped.json()["code"] == "spend_cap_reached"
        assert round(await prefix_level(tenant), 3) == 1.0


async def test_a_message_the_database_fails_to_store_gives_its_velocity_back(
    database_url: str,
) -> None:
    tenant, key = await new_tenant(
        database_url, {"velocity": {"per_prefix": 10, "prefix_digits_dropped": 3}}
    )
    # A real failure of the storing statement, for one client_reference only.
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            """
            CREATE FUNCTION refuse_test_message() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
            CREATE TRIGGER refuse_test_message BEFORE INSERT ON sms_log FOR EACH ROW
            WHEN (NEW.client_reference = 'fail-me') EXECUTE FUNCTION refuse_test_message();
            """
        )
    finally:
        await connection.close()
    async with gateway(database_url, key) as client:
        assert (await send(client, SAME_PREFIX[0])).status_code == 202
        try:
            failed = await send(client, SAME_PREFIX[1], client_reference="fail-me")
        except asyncpg.PostgresError:
            pass  # the ASGI transport re-raises what the app answered 500 for
        else:
            assert failed.status_code >= 500
        assert round(await prefix_level(tenant), 3) == 1.0
        assert (await send(client, SAME_PREFIX[2])).status_code == 202
        assert round(await prefix_level(tenant), 3) == 2.0


async def test_an_idempotent_replay_takes_nothing_more(database_url: str) -> None:
    tenant, key = await new_tenant(
        database_url, {"velocity": {"per_prefix": 10, "prefix_digits_dropped": 3}}
    )
    async with gateway(database_url, key) as client:
        headers = {"Idempotency-Key": "otp-1"}
        first = await client.post(
            "/v1/messages", json={"to": SAME_PREFIX[0], "body": "Code 1"}, headers=headers
        )
        again = await client.post(
            "/v1/messages", json={"to": SAME_PREFIX[0], "body": "Code 1"}, headers=headers
        )
        assert (first.status_code, again.status_code) == (202, 202)
        assert again.json()["id"] == first.json()["id"]
        assert round(await prefix_level(tenant), 3) == 1.0


async def test_with_redis_unreachable_the_limits_hold_on_the_postgres_counters(
    database_url: str,
) -> None:
    _, key = await new_tenant(
        database_url,
        {"velocity": {"per_prefix": 2, "prefix_digits_dropped": 3, "window_seconds": 3600}},
    )
    app = create_app(
        make_settings(
            database_url,
            protection_counters_url="redis://127.0.0.1:1/0",  # nothing listens there
            protection_counters_timeout_seconds=0.2,
        )
    )
    before = COUNTER_FALLBACKS._value.get()
    async with lifespan_client(app) as client:
        client.headers["X-API-Key"] = key
        statuses = [(await send(client, to)).status_code for to in SAME_PREFIX[:3]]
    assert statuses == [202, 202, 422]
    assert COUNTER_FALLBACKS._value.get() - before == 3
    connection = await asyncpg.connect(database_url)
    try:
        taken = await connection.fetchval(
            "SELECT amount FROM protection_counter WHERE key LIKE 'velocity:%:prefix:%'"
        )
    finally:
        await connection.close()
    assert round(taken) == 2
