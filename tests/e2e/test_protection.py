"""Protection (issue #14) end to end: destination policy, number types, velocity, spend caps.

The gateway runs under uvicorn on a socket with its dispatcher on, in front of the simulator
on another socket; the spend cap's concurrency test runs two `smsgateway serve` processes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from smsgateway.app import create_app
from smsgateway.services.drafting import destinations_from_settings
from smsgateway.services.protection import PolicyBook, set_policy
from smsgateway.simulator import SimulatorConfig
from tests.integration.callbacks.harness import SECRET as CALLBACK_SECRET
from tests.support.api_keys import issue_api_key
from tests.support.live_server import live_server
from tests.support.polling import wait_until
from tests.support.processes import (
    free_port,
    gateway_environment,
    start_gateway,
    stop_gateway,
    wait_until_ready,
)
from tests.support.settings import make_settings
from tests.support.sinch_simulator import PLAN_DEFAULT_FROM, RunningSimulator, running_simulator

pytestmark = pytest.mark.asyncio

SE_MOBILE = "+46701234567"
US_NUMBER = "+12015550123"
CA_NUMBER = "+16135550123"
GB_PREMIUM = "+449012345678"
US_TOLL_FREE = "+18002345678"

Gateway = Callable[..., Any]


@pytest_asyncio.fixture
async def simulator() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(
        SimulatorConfig.for_tests(default_from=PLAN_DEFAULT_FROM)
    ) as simulator:
        yield simulator


async def put_policy(database_url: str, tenant: str, document: dict[str, Any] | None) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=1)
    try:
        book = PolicyBook(pool, destinations_from_settings(make_settings(database_url)))
        await set_policy(pool, book, tenant=tenant, document=document, changed_by="test:operator")
    finally:
        await pool.close()


@asynccontextmanager
async def gateway(
    database_url: str, simulator: RunningSimulator, key: str, **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        make_settings(
            database_url,
            dispatcher="on",
            dispatch_poll_seconds=0.02,
            SINCH_BASE_URL=simulator.base_url,
            SINCH_SERVICE_PLAN_ID=simulator.plan_id,
            SINCH_API_TOKEN=simulator.token,
            SINCH_NUMBER="+12025550123",
            policy_refresh_seconds=0.05,
            **settings,
        )
    )
    async with (
        live_server(app) as base_url,
        httpx.AsyncClient(base_url=base_url, headers={"X-API-Key": key}, timeout=10) as client,
    ):
        yield client


async def send(
    client: httpx.AsyncClient, to: list[str], reference: str, **extra: Any
) -> httpx.Response:
    return await client.post(
        "/v1/messages",
        json={"to": to, "body": "Your code is 123456", "client_reference": reference, **extra},
    )


async def sent_to(simulator: RunningSimulator) -> list[str]:
    """Every recipient of every batch the simulator received (the gateway's client_reference
    is its message id, so a refused message has none to look up)."""
    response = await simulator.client.get(simulator.batches_path, params={"page_size": 100})
    response.raise_for_status()
    return sorted(to for batch in response.json()["batches"] for to in batch["to"])


async def reached_sinch(client: httpx.AsyncClient, message_id: str) -> None:
    async def submitted() -> bool:
        return (await client.get(f"/v1/messages/{message_id}")).json()["sinch_batch_id"] is not None

    await wait_until(submitted, timeout_s=10, message="the message to reach the simulator")


async def test_a_tenant_locked_to_us_and_ca_cannot_send_to_sweden(
    database_url: str, simulator: RunningSimulator
) -> None:
    key = await issue_api_key(database_url, name="otp", tenant="acme")
    await put_policy(database_url, "acme", {"allowed_countries": ["US", "CA"]})
    async with gateway(database_url, simulator, key) as client:
        refused = await send(client, [SE_MOBILE], "to-sweden")
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert problem["code"] == "country_not_allowed"
        assert problem["errors"] == [
            {
                "field": "body.to.0",
                "code": "country_not_allowed",
                "message": "The number is in SE, where this sender may not send messages.",
            }
        ]
        preview = await client.post(
            "/v1/messages/preview", json={"to": [SE_MOBILE, CA_NUMBER], "body": "hi"}
        )
        assert preview.status_code == 200
        assert [(r["index"], r["code"]) for r in preview.json()["refused"]] == [
            (0, "country_not_allowed")
        ]
        allowed = await send(client, [US_NUMBER, CA_NUMBER], "to-north-america")
        assert allowed.status_code == 202, allowed.text
        await reached_sinch(client, allowed.json()["id"])
        metrics = (await client.get("/metrics")).text
    assert await sent_to(simulator) == sorted([US_NUMBER, CA_NUMBER])
    assert 'smsgw_protection_refusals_total{country="SE",reason="country_not_allowed"}' in metrics


async def test_premium_rate_and_toll_free_numbers_are_refused_by_default(
    database_url: str, simulator: RunningSimulator
) -> None:
    key = await issue_api_key(database_url, name="otp")
    async with gateway(database_url, simulator, key) as client:
        refused = await send(client, [GB_PREMIUM, US_TOLL_FREE, US_NUMBER], "premium")
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "number_type_not_allowed"
        assert [(e["field"], e["code"]) for e in refused.json()["errors"]] == [
            ("body.to.0", "number_type_not_allowed"),
            ("body.to.1", "number_type_not_allowed"),
        ]
        assert "premium-rate" in refused.json()["errors"][0]["message"]
    assert GB_PREMIUM not in await sent_to(simulator)


async def test_a_number_type_can_be_switched_on_per_tenant(
    database_url: str, simulator: RunningSimulator
) -> None:
    key = await issue_api_key(database_url, name="otp", tenant="freephone")
    await put_policy(database_url, "freephone", {"refused_number_types": ["premium_rate"]})
    async with gateway(database_url, simulator, key) as client:
        assert (await send(client, [US_TOLL_FREE], "toll-free")).status_code == 202
        assert (await send(client, [GB_PREMIUM], "premium")).status_code == 422


async def test_the_gateway_wide_setting_locks_a_fresh_install(
    database_url: str, simulator: RunningSimulator
) -> None:
    key = await issue_api_key(database_url, name="otp")
    async with gateway(database_url, simulator, key, allowed_countries=["SE"]) as client:
        assert (await send(client, [US_NUMBER], "us")).json()["code"] == "country_not_allowed"
        assert (await send(client, [SE_MOBILE], "se")).status_code == 202


async def test_monitor_mode_sends_and_records(
    database_url: str, simulator: RunningSimulator
) -> None:
    key = await issue_api_key(database_url, name="otp", tenant="watcher")
    await put_policy(database_url, "watcher", {"allowed_countries": ["US"], "mode": "monitor"})
    async with gateway(database_url, simulator, key) as client:
        response = await send(client, [SE_MOBILE, US_NUMBER], "monitored")
        assert response.status_code == 202, response.text
        message_id = response.json()["id"]
        await reached_sinch(client, message_id)
        metrics = (await client.get("/metrics")).text
    assert await sent_to(simulator) == sorted([SE_MOBILE, US_NUMBER])
    assert 'smsgw_protection_monitored_total{country="SE",reason="country_not_allowed"}' in metrics
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT message_id, recipient, region, code FROM protection_event WHERE tenant = $1",
            "watcher",
        )
    finally:
        await connection.close()
    assert [tuple(row) for row in rows] == [
        (uuid.UUID(message_id), SE_MOBILE, "SE", "country_not_allowed")
    ]


async def test_a_burst_to_one_prefix_is_stopped_and_later_ones_pass(
    database_url: str, simulator: RunningSimulator
) -> None:
    key = await issue_api_key(database_url, name="otp", tenant="burst")
    await put_policy(
        database_url,
        "burst",
        {"velocity": {"per_prefix": 3, "prefix_digits_dropped": 3, "window_seconds": 3}},
    )
    same_prefix = [f"+46701234{n:03d}" for n in range(5)]
    async with gateway(database_url, simulator, key) as client:
        for n in range(3):
            assert (await send(client, [same_prefix[n]], f"ok-{n}")).status_code == 202
        refused = await send(client, [same_prefix[3]], "stopped")
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "velocity_limited"
        assert refused.json()["errors"][0]["field"] == "body.to.0"
        assert 1 <= int(refused.headers["Retry-After"]) <= 3
        # Another prefix is not held back by this one.
        assert (await send(client, ["+46709876543"], "other-prefix")).status_code == 202

        async def passes_again() -> bool:
            return (await send(client, [same_prefix[4]], "later")).status_code == 202

        await wait_until(passes_again, timeout_s=10, message="the prefix's window to drain")
    assert same_prefix[3] not in await sent_to(simulator)


async def test_a_daily_segment_cap_is_never_overshot_by_two_processes(
    database_url: str, tmp_path: Path
) -> None:
    key = await issue_api_key(database_url, name="otp", tenant="capped")
    await put_policy(database_url, "capped", {"spend": {"daily_segments": 25}})
    port = free_port()
    log = tmp_path / "gateway.log"
    process = start_gateway(
        ["serve", "--workers", "2"],
        gateway_environment(DATABASE_URL=database_url, PORT=str(port), SMSGW_DISPATCHER="off"),
        log,
    )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", process, 60, log)
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"X-API-Key": key},
            timeout=30,
            limits=limits,
        ) as client:
            # 60 messages of 1 segment to 1 recipient each, and 10 of 2 segments: many more
            # than the cap, all at once, over fresh connections spread on both processes.
            jobs: list[Awaitable[httpx.Response]] = [
                send(client, [f"+4670123{n:04d}"], f"cap-{n}") for n in range(60)
            ]
            jobs += [
                client.post(
                    "/v1/messages",
                    json={"to": [f"+4670999{n:04d}"], "body": "x" * 200},
                )
                for n in range(10)
            ]
            responses = await asyncio.gather(*jobs)
            last = await send(client, ["+46701111111"], "after")
    finally:
        assert stop_gateway(process) == 0
    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {202, 422}, [
        r.text for r in responses if r.status_code not in (202, 422)
    ]
    refusals = [response for response in responses if response.status_code == 422]
    assert {r.json()["code"] for r in refusals} == {"spend_cap_reached"}
    assert all(int(r.headers["Retry-After"]) >= 1 for r in refusals)
    assert last.status_code == 422
    connection = await asyncpg.connect(database_url)
    try:
        stored = await connection.fetchval(
            "SELECT coalesce(sum(segment_count * recipient_count), 0) FROM sms_log"
            " WHERE tenant = 'capped'"
        )
        counted = await connection.fetchval(
            "SELECT amount FROM protection_counter WHERE key LIKE 'spend:capped:%:day_segments'"
        )
    finally:
        await connection.close()
    assert stored == counted
    assert 24 <= stored <= 25, "full up to the last segment that fits, never past the cap"


async def test_every_policy_change_is_logged_with_who_and_when(
    database_url: str, simulator: RunningSimulator
) -> None:
    await put_policy(database_url, "acme", {"allowed_countries": ["US"]})
    await put_policy(database_url, "acme", None)
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT policy::text, changed_by FROM protection_policy_change ORDER BY id"
        )
    finally:
        await connection.close()
    assert [(row["policy"] is None, row["changed_by"]) for row in rows] == [
        (False, "test:operator"),
        (True, "test:operator"),
    ]


async def test_the_warning_threshold_queues_a_spend_callback_before_the_cap_bites(
    database_url: str, simulator: RunningSimulator
) -> None:
    key = await issue_api_key(database_url, name="otp", tenant="warned")
    await put_policy(database_url, "warned", {"spend": {"daily_segments": 4, "warn_at": 0.5}})
    hook = "http://127.0.0.1:9/hook"
    async with gateway(
        database_url,
        simulator,
        key,
        callback_signing_secrets=[CALLBACK_SECRET],
        callback_allow_private_targets=True,
    ) as client:
        codes = [
            (await send(client, [f"+4670123450{n}"], f"w-{n}", callback_url=hook)).status_code
            for n in range(5)
        ]
    assert codes == [202, 202, 202, 202, 422]
    connection = await asyncpg.connect(database_url)
    try:
        payloads = await connection.fetch(
            "SELECT payload::text FROM callback_event WHERE payload->>'type' = $1",
            "spend.threshold_reached",
        )
    finally:
        await connection.close()
    assert len(payloads) == 1, "raised once, when the second message reached half the cap"
    assert '"cap": "day_segments"' in payloads[0]["payload"]


async def test_preview_shows_what_velocity_and_spend_would_refuse_and_takes_nothing(
    database_url: str, simulator: RunningSimulator
) -> None:
    key = await issue_api_key(database_url, name="otp", tenant="previewed")
    await put_policy(
        database_url,
        "previewed",
        {
            "velocity": {"per_prefix": 2, "prefix_digits_dropped": 3, "window_seconds": 3600},
            "spend": {"daily_segments": 3},
        },
    )
    same_prefix = [f"+46701234{n:03d}" for n in range(3)]
    async with gateway(database_url, simulator, key) as client:
        for n in range(2):
            assert (await send(client, [same_prefix[n]], f"ok-{n}")).status_code == 202

        async def preview(to: list[str]) -> dict[str, Any]:
            response = await client.post(
                "/v1/messages/preview", json={"to": to, "body": "Your code is 123456"}
            )
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body

        counters_before = await counter_amounts(database_url)
        for _ in range(2):  # the same answer twice: the first took nothing
            [limited] = (await preview([same_prefix[2]]))["limited"]
            assert (limited["index"], limited["code"]) == (0, "velocity_limited")
            assert 1 <= limited["retry_after"] <= 3600
        other_prefixes = ["+46709876543", "+46705550123"]
        spend = (await preview(other_prefixes))["limited"]
        assert [(item["index"], item["code"]) for item in spend] == [
            (0, "spend_cap_reached"),
            (1, "spend_cap_reached"),
        ]
        assert all(item["retry_after"] >= 1 for item in spend)
        assert (await preview(other_prefixes[:1]))["limited"] == []
        assert await counter_amounts(database_url) == counters_before
        assert (await send(client, other_prefixes[:1], "fits")).status_code == 202


async def counter_amounts(database_url: str) -> dict[str, Any]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT key, amount, updated_at FROM protection_counter")
    finally:
        await connection.close()
    return {row["key"]: (row["amount"], row["updated_at"]) for row in rows}


async def test_a_cancelled_message_gives_its_segments_back_to_the_cap(
    database_url: str, simulator: RunningSimulator
) -> None:
    key = await issue_api_key(database_url, name="otp", tenant="cancels")
    await put_policy(database_url, "cancels", {"spend": {"daily_segments": 2}})
    later = {"send_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
    async with gateway(database_url, simulator, key) as client:
        held = [await send(client, [f"+4670123450{n}"], f"held-{n}", **later) for n in range(2)]
        assert [response.status_code for response in held] == [202, 202]
        full = await send(client, ["+46701234509"], "full", **later)
        assert full.json()["code"] == "spend_cap_reached"
        cancelled = await client.post(f"/v1/messages/{held[0].json()['id']}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert (await send(client, ["+46701234509"], "fits-again", **later)).status_code == 202
        assert (await send(client, ["+46701234508"], "full-again", **later)).status_code == 422


async def test_a_templated_message_takes_the_parts_of_each_filled_in_text(
    database_url: str, simulator: RunningSimulator
) -> None:
    key = await issue_api_key(database_url, name="otp", tenant="templated")
    await put_policy(database_url, "templated", {"spend": {"daily_segments": 3}})
    later = {"send_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
    long_name = {"+46701234501": "x" * 160, "default": "there"}
    async with gateway(database_url, simulator, key) as client:
        # 2 parts for the first recipient, 1 for the second: 3, not 2 x 1 nor 2 x 2.
        templated = await client.post(
            "/v1/messages",
            json={
                "to": ["+46701234501", "+46701234502"],
                "body": "Hi ${name}",
                "parameters": {"name": long_name},
                **later,
            },
        )
        assert templated.status_code == 202, templated.text
        assert templated.json()["segments"] == 2
        full = await send(client, ["+46701234509"], "full", **later)
        assert full.json()["code"] == "spend_cap_reached"
    amounts = await counter_amounts(database_url)
    [(taken, _)] = [value for key, value in amounts.items() if key.endswith(":day_segments")]
    assert taken == 3
