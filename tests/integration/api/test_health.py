from __future__ import annotations

from datetime import datetime

import asyncpg
import pytest

from smsgateway.app import create_app
from smsgateway.store.schema import head_revision
from tests.support.asgi import lifespan_client
from tests.support.settings import MIGRATIONS_DIR, make_settings

pytestmark = pytest.mark.asyncio


async def test_healthz_answers_without_touching_the_database(database_url: str) -> None:
    app = create_app(make_settings(database_url))
    async with lifespan_client(app) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_200_when_the_schema_is_at_head(database_url: str) -> None:
    app = create_app(make_settings(database_url))
    async with lifespan_client(app) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert str(head_revision(MIGRATIONS_DIR)) in body["database"]
    assert body["sinch"].startswith("SIMULATOR at http://127.0.0.1:8001")


async def test_readyz_is_503_when_migrations_are_missing(empty_database_url: str) -> None:
    app = create_app(make_settings(empty_database_url))
    async with lifespan_client(app) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "not_ready"
    assert "no revision" in problem["detail"]
    assert "smsgateway migrate" in problem["detail"]


async def test_readyz_is_503_within_its_timeout_when_the_database_is_down(
    unused_tcp_port: int,
) -> None:
    dead = f"postgresql://nobody@127.0.0.1:{unused_tcp_port}/nothing"
    app = create_app(make_settings(dead, db_pool_min_size=0, readiness_timeout_seconds=0.5))
    async with lifespan_client(app) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["code"] == "not_ready"
    assert (
        "unreachable" in response.json()["detail"] or "did not answer" in response.json()["detail"]
    )


async def test_tutorial_health_keeps_the_express_shape(database_url: str) -> None:
    app = create_app(make_settings(database_url))
    async with lifespan_client(app) as client:
        response = await client.get("/health")
    body = response.json()
    assert response.status_code == 200
    assert set(body) == {"status", "timestamp", "uptime"}
    assert body["status"] == "healthy"
    assert datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00")).tzinfo is not None
    assert body["uptime"] >= 0


async def test_lifespan_closes_the_pool(database_url: str) -> None:
    app = create_app(make_settings(database_url))
    async with lifespan_client(app) as client:
        await client.get("/readyz")
    connection = await asyncpg.connect(database_url)
    try:
        others = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await connection.close()
    assert others == 0
