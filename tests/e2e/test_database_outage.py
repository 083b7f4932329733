"""Postgres goes away and comes back: 503 within a second, never a 202; then recovery."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import pytest

from smsgateway.app import create_app
from smsgateway.observability.outage import DATABASE_OUTAGE
from smsgateway.services.api_keys import create_api_key
from smsgateway.store.embedded import start_embedded_postgres
from smsgateway.store.schema import upgrade_to_head
from tests.support.asgi import lifespan_client
from tests.support.settings import MIGRATIONS_DIR, make_settings

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]


async def test_outage_is_answered_503_quickly_and_recovery_is_automatic(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    DATABASE_OUTAGE.available()  # whatever an earlier test left behind
    server = await asyncio.to_thread(start_embedded_postgres, tmp_path)
    try:
        await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, server.dsn)
        pool = await asyncpg.create_pool(server.dsn, min_size=0, max_size=1)
        key = (await create_api_key(pool, name="outage")).key
        # Never used before the outage, so the gateway has nothing cached for it.
        uncached = (await create_api_key(pool, name="uncached")).key
        await pool.close()

        app = create_app(make_settings(server.dsn, dispatcher="off"))
        async with lifespan_client(app) as client:
            client.headers["X-API-Key"] = key
            before = await client.post("/v1/messages", json={"to": "+46701234567", "body": "1"})
            assert before.status_code == 202

            await asyncio.to_thread(server.stop)
            started = time.monotonic()
            during = await client.post("/v1/messages", json={"to": "+46701234567", "body": "2"})
            elapsed = time.monotonic() - started
            assert during.status_code == 503
            assert during.headers["content-type"] == "application/problem+json"
            assert during.json()["code"] == "database_unavailable"
            assert during.headers["retry-after"] == "1"
            assert elapsed < 1.0
            for method, path in (("POST", "/v1/messages"), ("GET", "/v1/messages")):
                answer = await client.request(
                    method,
                    path,
                    json={"to": "+46701234567", "body": "4"} if method == "POST" else None,
                    headers={"X-API-Key": uncached},
                )
                assert answer.status_code == 503, (method, path, answer.text)
                assert answer.json()["code"] == "database_unavailable"
                assert answer.headers["retry-after"] == "1"
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert "database" in ready.json()["detail"]

            server = await asyncio.to_thread(start_embedded_postgres, tmp_path)
            deadline = time.monotonic() + 15
            after = None
            while time.monotonic() < deadline:
                after = await client.post("/v1/messages", json={"to": "+46701234567", "body": "3"})
                if after.status_code == 202:
                    break
                assert after.status_code == 503
                await asyncio.sleep(0.1)
            assert after is not None
            assert after.status_code == 202
            # However many calls failed, the outage is two lines: its start and its end.
            said = [r.getMessage() for r in caplog.records if r.name == "smsgateway.database"]
            assert said == ["database unavailable", "database available again"]
            assert not [r for r in caplog.records if r.exc_info]
            assert (await client.get("/readyz")).status_code == 200

        connection = await asyncpg.connect(server.dsn)
        try:
            bodies = [row["body"] for row in await connection.fetch("SELECT body FROM sms_log")]
        finally:
            await connection.close()
        assert "1" in bodies, "a message answered 202 before the outage must survive it"
        assert "2" not in bodies
        assert "3" in bodies
    finally:
        await asyncio.to_thread(server.stop)
