"""The retention sweep on a real database: kept reports applied once their batch is known, old
unmatched reports, expired idempotency keys and old webhook nonces deleted; and the worker
that runs it where the dispatcher runs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import httpx
import pytest
import pytest_asyncio
from prometheus_client import REGISTRY

from smsgateway.app import create_app
from smsgateway.services.api_keys import create_api_key
from smsgateway.services.retention import RetentionPolicy, RetentionSweeper
from smsgateway.store.pool import create_pool
from smsgateway.workers.retention import RetentionWorker
from tests.integration.webhooks.harness import (
    message,
    post_report,
    recipient_report,
    recipient_states,
    send_message,
)
from tests.support.asgi import lifespan_client
from tests.support.polling import wait_until
from tests.support.settings import make_settings

pytestmark = pytest.mark.asyncio

SE = "+46701234567"
POLICY = RetentionPolicy(
    unmatched_report_max_age=timedelta(days=30), webhook_nonce_max_age=timedelta(minutes=10)
)


@pytest_asyncio.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(
        database_url, min_size=0, max_size=4, command_timeout=10, connect_timeout=5
    )
    try:
        yield pool
    finally:
        await pool.close()


@pytest_asyncio.fixture
async def gateway(database_url: str, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    key = (await create_api_key(pool, name="operator")).key
    settings = make_settings(database_url, SINCH_NUMBER="+12025550123")
    async with lifespan_client(create_app(settings)) as client:
        client.headers["X-API-Key"] = key
        yield client


def deleted(table: str) -> float:
    value = REGISTRY.get_sample_value("smsgw_retention_deleted_total", {"table": table})
    return value or 0.0


def applied() -> float:
    return REGISTRY.get_sample_value("smsgw_retention_reports_applied_total") or 0.0


async def keep_unmatched(pool: asyncpg.Pool, kind: str, age: timedelta, batch: str) -> None:
    await pool.execute(
        "INSERT INTO unmatched_report (kind, batch_id, dedupe_key, payload, received_at)"
        " VALUES ($1, $2, $3, '{}', now() - $4::interval)",
        kind,
        batch,
        uuid.uuid4().hex,
        age,
    )


async def test_a_kept_report_is_applied_once_its_batch_is_recorded(
    gateway: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    message_id = await send_message(gateway, [SE], delivery_report="per_recipient")
    batch = f"BATCH{uuid.uuid4().hex[:20].upper()}"
    # Early, and without a client_reference: nothing to match it by, so it is kept.
    report = recipient_report(batch, SE, "Delivered", 0, "2026-11-26T10:02:42Z")
    assert (await post_report(gateway, report)).json()["outcome"] == "unknown_batch"
    # The batch id lands, but the dispatcher's own apply_unmatched never ran (it failed).
    await pool.execute(
        "UPDATE sms_log SET sinch_batch_id = $2, status = 'submitted' WHERE id = $1",
        uuid.UUID(message_id),
        batch,
    )
    await pool.execute(
        "UPDATE sms_recipient SET status = 'submitted' WHERE message_id = $1",
        uuid.UUID(message_id),
    )
    counted = applied()

    result = await RetentionSweeper(pool, POLICY).sweep()

    assert result.reports_applied == 1
    assert result.failed_steps == ()
    assert recipient_states(await message(gateway, message_id)) == {SE: "delivered"}
    assert await pool.fetchval("SELECT count(*) FROM unmatched_report") == 0
    assert applied() == counted + 1
    # A second sweep finds nothing left to do.
    assert (await RetentionSweeper(pool, POLICY).sweep()).reports_applied == 0


async def test_old_unmatched_reports_are_deleted_and_recent_ones_kept(pool: asyncpg.Pool) -> None:
    for index in range(5):
        await keep_unmatched(pool, "unknown_batch", timedelta(days=31), f"OLD{index}")
    await keep_unmatched(pool, "unprocessable", timedelta(days=40), "OLDER")
    await keep_unmatched(pool, "unknown_batch", timedelta(days=29), "RECENT")
    counted = deleted("unmatched_report")

    # Two rows per statement: the sweep repeats the delete until it comes back short.
    sweeper = RetentionSweeper(
        pool,
        RetentionPolicy(
            unmatched_report_max_age=timedelta(days=30),
            webhook_nonce_max_age=timedelta(minutes=10),
            batch_size=2,
        ),
    )
    result = await sweeper.sweep()

    assert result.unmatched_reports_deleted == 6
    rows = await pool.fetch("SELECT batch_id FROM unmatched_report")
    assert [row["batch_id"] for row in rows] == ["RECENT"]
    assert deleted("unmatched_report") == counted + 6


async def test_expired_idempotency_keys_are_deleted(
    gateway: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    for key in ("old-1", "old-2", "fresh"):
        response = await gateway.post(
            "/v1/messages",
            json={"to": [SE], "body": "Hi"},
            headers={"Idempotency-Key": key},
        )
        assert response.status_code == 202, response.text
    await pool.execute(
        "UPDATE idempotency_key SET created_at = now() - interval '25 hours'"
        " WHERE idempotency_key LIKE 'old-%'"
    )
    counted = deleted("idempotency_key")

    result = await RetentionSweeper(pool, POLICY).sweep()

    assert result.idempotency_keys_deleted == 2
    keys = await pool.fetch("SELECT idempotency_key FROM idempotency_key")
    assert [row["idempotency_key"] for row in keys] == ["fresh"]
    assert deleted("idempotency_key") == counted + 2


async def test_webhook_nonces_past_twice_the_window_are_pruned(pool: asyncpg.Pool) -> None:
    await pool.execute(
        "INSERT INTO webhook_nonce (nonce, seen_at) VALUES"
        " ('old', now() - interval '11 minutes'), ('new', now() - interval '9 minutes')"
    )
    counted = deleted("webhook_nonce")

    result = await RetentionSweeper(pool, POLICY).sweep()

    assert result.webhook_nonces_deleted == 1
    assert [row["nonce"] for row in await pool.fetch("SELECT nonce FROM webhook_nonce")] == ["new"]
    assert deleted("webhook_nonce") == counted + 1


async def test_the_nonce_retention_is_twice_the_signature_window() -> None:
    settings = make_settings(webhook_signature_max_age_seconds=120)
    policy = RetentionPolicy.from_settings(settings)
    assert policy.webhook_nonce_max_age == timedelta(minutes=4)
    assert policy.unmatched_report_max_age == timedelta(days=30)
    longer = RetentionPolicy.from_settings(make_settings(unmatched_report_retention_days=7))
    assert longer.unmatched_report_max_age == timedelta(days=7)


async def test_a_failing_step_is_counted_and_the_others_still_run(pool: asyncpg.Pool) -> None:
    await keep_unmatched(pool, "unprocessable", timedelta(days=31), "OLD")
    # This test's own database: a step that fails for real.
    await pool.execute("DROP TABLE webhook_nonce")
    errors_before = (
        REGISTRY.get_sample_value("smsgw_retention_step_errors_total", {"step": "webhook_nonces"})
        or 0.0
    )

    result = await RetentionSweeper(pool, POLICY).sweep()

    assert result.failed_steps == ("webhook_nonces",)
    assert result.unmatched_reports_deleted == 1
    assert (
        REGISTRY.get_sample_value("smsgw_retention_step_errors_total", {"step": "webhook_nonces"})
        == errors_before + 1
    )


async def test_the_worker_sweeps_periodically_and_stops_promptly(pool: asyncpg.Pool) -> None:
    worker = RetentionWorker(RetentionSweeper(pool, POLICY), 0.05)
    running = asyncio.create_task(worker.run())
    try:
        for round_ in range(2):
            await pool.execute(
                "INSERT INTO webhook_nonce (nonce, seen_at) VALUES ($1, now() - interval '1 hour')",
                f"old-{round_}",
            )
            await wait_until(
                lambda: _empty(pool, "webhook_nonce"), message=f"sweep {round_ + 1} deleted"
            )
    finally:
        await worker.stop(1.0)
        await asyncio.wait_for(running, timeout=2.0)


async def test_a_gateway_with_its_dispatcher_on_runs_the_job(
    database_url: str, pool: asyncpg.Pool
) -> None:
    await pool.execute(
        "INSERT INTO webhook_nonce (nonce, seen_at) VALUES ('old', now() - interval '1 hour')"
    )
    settings = make_settings(
        database_url,
        dispatcher="on",
        retention_interval_seconds=0.05,
        webhook_signature_max_age_seconds=60,
    )
    async with lifespan_client(create_app(settings)):
        await wait_until(lambda: _empty(pool, "webhook_nonce"), message="the nonce pruned")


async def _empty(pool: asyncpg.Pool, table: str) -> bool:
    count: int = await pool.fetchval(f"SELECT count(*) FROM {table}")
    return count == 0


async def test_idle_protection_counters_are_deleted_and_live_ones_kept(pool: asyncpg.Pool) -> None:
    await pool.execute(
        "INSERT INTO protection_counter (key, amount, updated_at) VALUES"
        " ('spend:acme:2026-09-01:day_segments', 40, now() - interval '63 days'),"
        " ('velocity:acme:prefix:+4670123', 3, now() - interval '1 hour')"
    )
    result = await RetentionSweeper(pool, POLICY).sweep()
    assert result.protection_counters_deleted == 1
    keys = [row["key"] for row in await pool.fetch("SELECT key FROM protection_counter")]
    assert keys == ["velocity:acme:prefix:+4670123"]
