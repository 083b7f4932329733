"""Delivery reports that never arrive are resolved by asking Sinch (the simulator, on a socket).

Messages are accepted and dispatched as the gateway does it (the dispatcher schedules the first
check); the simulator's callbacks go to a closed port, so only reconciliation can settle them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY

from smsgateway.domain.reconciliation import ReconcilePolicy
from smsgateway.services.delivery_reports import DeliveryReportService
from smsgateway.services.dispatch import Dispatcher, DispatchOutcome, DispatchPolicy
from smsgateway.simulator import SimulatorConfig
from smsgateway.sinch import NO_RETRY, SinchClient
from smsgateway.store import outbox
from tests.integration.dispatch.accepted import (
    callback_payloads,
    insert_accepted,
    message_row,
    status_of,
)
from tests.integration.dispatch.harness import set_faults, sinch_client
from tests.integration.reconciliation.conftest import (
    FIRST_CHECK,
    POLICY,
    RequestLog,
    StartReconciler,
)
from tests.support.live_server import live_server
from tests.support.polling import wait_until
from tests.support.sinch_simulator import PLAN_DEFAULT_FROM, RunningSimulator, running_simulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

A, B = "+15551230001", "+15551230002"
# Nothing listens there: the simulator's delivery-report callbacks are lost.
LOST_WEBHOOK = "http://127.0.0.1:1/webhooks/sinch/delivery-reports"
FINAL = {"delivered", "partially_delivered", "failed", "rejected", "expired", "cancelled"}


async def submit(
    pool: asyncpg.Pool, sinch: SinchClient, messages: Sequence[Sequence[str]], **insert: Any
) -> list[tuple[uuid.UUID, str]]:
    """Accepts and dispatches one message per recipient list; returns (id, batch id) of each."""
    async with pool.acquire() as connection:
        ids = [
            await insert_accepted(connection, recipients, delivery_report="per_recipient", **insert)
            for recipients in messages
        ]
        claims = await outbox.claim_due(connection, 1000, 30.0, "test")
    policy = DispatchPolicy(
        dlr_callback_url=LOST_WEBHOOK, lease_seconds=10.0, reconcile_after_seconds=FIRST_CHECK
    )
    dispatcher = Dispatcher(pool, sinch, policy)
    outcomes = await asyncio.gather(*(dispatcher.dispatch(claim) for claim in claims))
    assert set(outcomes) == {DispatchOutcome.SUBMITTED}
    rows = await pool.fetch(
        "SELECT id, sinch_batch_id FROM sms_log WHERE id = ANY($1::uuid[])", ids
    )
    batches = {row["id"]: row["sinch_batch_id"] for row in rows}
    return [(message_id, batches[message_id]) for message_id in ids]


async def awaiting(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM awaiting_report")
    return count


async def drained(pool: asyncpg.Pool) -> bool:
    return await awaiting(pool) == 0


async def all_final(pool: asyncpg.Pool, ids: Sequence[uuid.UUID]) -> bool:
    return all([await status_of(pool, message_id) in FINAL for message_id in ids])


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@asynccontextmanager
async def slow_simulator(delay_s: float, http: httpx.AsyncClient) -> AsyncIterator[SinchClient]:
    """A simulator of its own whose recipients reach their final status after ``delay_s``."""
    config = SimulatorConfig.for_tests(delivery_delay_s=delay_s, default_from=PLAN_DEFAULT_FROM)
    async with running_simulator(config) as slow:
        yield sinch_client(http, slow)


async def test_a_report_that_never_arrives_is_resolved_by_one_full_batch_report(
    pool: asyncpg.Pool,
    sinch: SinchClient,
    sim: RunningSimulator,
    start_reconciler: StartReconciler,
    request_log: RequestLog,
) -> None:
    await sim.client.put("/_admin/outcomes", json={"overrides": {B: "failed"}})
    resolved_before = sample("smsgw_reconcile_recipients_resolved_total", status="failed")
    [(message_id, batch_id)] = await submit(pool, sinch, [[A, B]])
    assert await awaiting(pool) == 1

    await start_reconciler()
    await wait_until(lambda: all_final(pool, [message_id]), timeout_s=10, message="resolved")

    async with pool.acquire() as connection:
        row = await message_row(connection, message_id)
        callbacks = await callback_payloads(connection, message_id)
        codes = await connection.fetch(
            "SELECT sinch_code FROM sms_recipient WHERE message_id = $1 ORDER BY position",
            message_id,
        )
    assert row.status == "partially_delivered"
    assert row.recipient_statuses == ["delivered", "failed"]
    assert [r["sinch_code"] for r in codes] == [0, 402]
    # The same event a webhook report leaves, saying where it came from.
    reports = [
        d for k, d in zip(row.event_kinds, row.events, strict=True) if k == "delivery_report"
    ]
    assert len(reports) == 1
    assert reports[0]["source"] == "reconciliation"
    assert reports[0]["report"]["batch_id"] == batch_id
    assert sorted(reports[0]["changed"]) == [A, B]
    # And the same status callbacks, in order, after the dispatcher's "submitted" ones.
    moves = [(c["recipient"], c["previous_status"], c["status"]) for c in callbacks]
    assert moves == [
        (A, "queued", "submitted"),
        (B, "queued", "submitted"),
        (A, "submitted", "delivered"),
        (B, "submitted", "failed"),
    ]
    assert {c["message_status"] for c in callbacks[2:]} == {"partially_delivered"}
    assert [c["code"] for c in callbacks[2:]] == [0, 402]
    # One request settled it: the full batch report, no per-recipient calls.
    requests = request_log.reports(batch_id)
    assert [
        (url.path.endswith("/delivery_report"), url.params.get("type")) for _, url in requests
    ] == [(True, "full")]
    assert await awaiting(pool) == 0
    assert (
        sample("smsgw_reconcile_recipients_resolved_total", status="failed") == resolved_before + 1
    )


async def test_an_intermediate_answer_is_asked_again_with_backoff_until_final(
    pool: asyncpg.Pool,
    http: httpx.AsyncClient,
    start_reconciler: StartReconciler,
    request_log: RequestLog,
) -> None:
    async with slow_simulator(1.5, http) as slow:
        [(message_id, batch_id)] = await submit(pool, slow, [[A]])
        await start_reconciler(client=slow)
        await wait_until(lambda: all_final(pool, [message_id]), timeout_s=15, message="final")

    assert await status_of(pool, message_id) == "delivered"
    times = [at for at, _ in request_log.reports(batch_id)]
    assert len(times) >= 2, "the first check, at 0.2 s, found the message still on its way"
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # Never sooner than half the interval (0.1 s after the first round); at most the cap, 0.4 s.
    assert min(gaps) >= POLICY.first_check / 2 - 0.02
    async with pool.acquire() as connection:
        row = await message_row(connection, message_id)
    sources = {
        d.get("source")
        for k, d in zip(row.event_kinds, row.events, strict=True)
        if k == "delivery_report"
    }
    assert sources == {"reconciliation"}
    assert await awaiting(pool) == 0


async def test_a_message_final_by_webhook_is_not_asked_about(
    pool: asyncpg.Pool,
    sinch: SinchClient,
    sim: RunningSimulator,
    start_reconciler: StartReconciler,
    request_log: RequestLog,
) -> None:
    settled_before = sample("smsgw_reconcile_messages_checked_total", outcome="settled")
    [(message_id, batch_id)] = await submit(pool, sinch, [[A]])
    webhook = {
        "type": "recipient_delivery_report_sms",
        "batch_id": batch_id,
        "recipient": A,
        "code": 0,
        "status": "Delivered",
        "at": "2026-12-03T10:00:00.000Z",
    }
    await DeliveryReportService(pool).receive(json.dumps(webhook).encode())
    assert await status_of(pool, message_id) == "delivered"

    await start_reconciler()
    await wait_until(lambda: drained(pool), timeout_s=10, message="the row dropped")

    assert request_log.reports(batch_id) == []
    assert sample("smsgw_reconcile_messages_checked_total", outcome="settled") == settled_before + 1


async def test_two_reconcilers_ask_sinch_once_per_message_per_round(
    pool: asyncpg.Pool,
    second_pool: asyncpg.Pool,
    sinch: SinchClient,
    sim: RunningSimulator,
    start_reconciler: StartReconciler,
    request_log: RequestLog,
) -> None:
    recipients = [f"+1555123{index:04d}" for index in range(20)]
    submitted = await submit(pool, sinch, [[msisdn] for msisdn in recipients])
    await start_reconciler(batch_size=5)
    await start_reconciler(on_pool=second_pool, batch_size=5)
    ids = [message_id for message_id, _ in submitted]
    await wait_until(lambda: all_final(pool, ids), timeout_s=15, message="all resolved")

    # Each message was settled by its first round: exactly one request each, from either process.
    per_batch = [len(request_log.reports(batch_id)) for _, batch_id in submitted]
    assert per_batch == [1] * len(submitted)
    await wait_until(lambda: drained(pool), timeout_s=5, message="rows dropped")


async def awaiting_row(pool: asyncpg.Pool, message_id: uuid.UUID) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT attempts, last_error, due_at FROM awaiting_report WHERE message_id = $1",
        message_id,
    )


@pytest.mark.parametrize(
    ("faults", "kind", "requests"),
    [
        ({"server_error_rate": 1.0, "max_faults": 2}, "server_error", 3),
        ({"rate_limit_rate": 1.0, "retry_after_s": 1, "max_faults": 1}, "rate_limited", 2),
    ],
)
async def test_sinch_errors_back_off_without_losing_the_message(
    pool: asyncpg.Pool,
    sinch: SinchClient,
    sim: RunningSimulator,
    start_reconciler: StartReconciler,
    request_log: RequestLog,
    faults: dict[str, object],
    kind: str,
    requests: int,
) -> None:
    errors_before = sample("smsgw_reconcile_errors_total", kind=kind)
    [(message_id, batch_id)] = await submit(pool, sinch, [[A]])
    await set_faults(sim, scope="all", **faults)

    await start_reconciler()
    await wait_until(lambda: all_final(pool, [message_id]), timeout_s=15, message="resolved")

    assert await status_of(pool, message_id) == "delivered"
    times = [at for at, _ in request_log.reports(batch_id)]
    assert len(times) == requests
    if kind == "rate_limited":
        # Sinch's Retry-After (1 s) was honoured, though the backoff alone is 0.1-0.2 s.
        assert times[1] - times[0] >= 0.95
    assert sample("smsgw_reconcile_errors_total", kind=kind) == errors_before + requests - 1


async def test_a_message_past_its_expiry_is_given_up_after_one_last_check(
    pool: asyncpg.Pool,
    http: httpx.AsyncClient,
    start_reconciler: StartReconciler,
    request_log: RequestLog,
) -> None:
    given_up_before = sample("smsgw_reconcile_given_up_total", reason="expired")
    async with slow_simulator(60.0, http) as slow:
        [(message_id, batch_id)] = await submit(pool, slow, [[A, B]])
        # As if the three days of Sinch's expiry had passed with no report.
        await pool.execute("UPDATE awaiting_report SET expires_at = now() - interval '1 hour'")
        await start_reconciler(client=slow)
        await wait_until(lambda: drained(pool), timeout_s=10, message="given up")

    assert len(request_log.reports(batch_id)) == 1
    async with pool.acquire() as connection:
        row = await message_row(connection, message_id)
    assert row.status == "submitted"  # nothing invented: Sinch never said more than Dispatched
    assert row.event_kinds[-1] == "reconciliation_given_up"
    detail = row.events[-1]
    assert (detail["reason"], detail["unresolved"], detail["rounds"]) == ("expired", [A, B], 1)
    assert sample("smsgw_reconcile_given_up_total", reason="expired") == given_up_before + 1


async def test_an_unknown_batch_is_given_up(
    pool: asyncpg.Pool,
    sinch: SinchClient,
    sim: RunningSimulator,
    start_reconciler: StartReconciler,
) -> None:
    [(message_id, _)] = await submit(pool, sinch, [[A]])
    await pool.execute("UPDATE awaiting_report SET batch_id = '01NOSUCHBATCH0000000000000'")
    await start_reconciler()
    await wait_until(lambda: drained(pool), timeout_s=10, message="given up")
    async with pool.acquire() as connection:
        row = await message_row(connection, message_id)
    assert row.event_kinds[-1] == "reconciliation_given_up"
    assert row.events[-1]["reason"] == "unknown_batch"


async def test_a_401_halts_the_round_and_raises_one_alarm(
    pool: asyncpg.Pool,
    http: httpx.AsyncClient,
    sinch: SinchClient,
    sim: RunningSimulator,
    start_reconciler: StartReconciler,
    request_log: RequestLog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    submitted = await submit(pool, sinch, [[A], [B], ["+15551230003"]])
    wrong = SinchClient.for_api_token(
        http,
        service_plan_id=sim.plan_id,
        api_token="not-the-token",
        base_url=sim.base_url,
        retry_policy=NO_RETRY,
    )
    # Long intervals: the test ends before a second round.
    patient = ReconcilePolicy(first_check=5.0, max_interval=10.0)
    caplog.set_level(logging.ERROR, logger="smsgateway.services.reconciliation")

    async def all_due() -> bool:
        due: int = await pool.fetchval("SELECT count(*) FROM awaiting_report WHERE due_at <= now()")
        return due == len(submitted)

    await wait_until(all_due, timeout_s=5, message="all three due")  # so one round takes all
    worker = await start_reconciler(client=wrong, policy=patient, concurrency=1)

    async def all_rescheduled() -> bool:
        rows = [await awaiting_row(pool, message_id) for message_id, _ in submitted]
        return all(row is not None and row["last_error"] == "unauthorized" for row in rows)

    await wait_until(all_rescheduled, timeout_s=10, message="the round rescheduled")
    await worker.stop(2.0)

    assert len(request_log.reports()) == 1
    alarms = [r for r in caplog.records if "OPERATOR ALARM" in r.getMessage()]
    assert len(alarms) == 1
    assert "not-the-token" not in caplog.text
    for message_id, _ in submitted:
        row = await awaiting_row(pool, message_id)
        assert row is not None
        assert row["attempts"] == 1
        assert await status_of(pool, message_id) == "submitted"


class SinchStandIn:
    """A recording stand-in for Sinch's report endpoints (pure ASGI, served on a socket): its
    full batch report names only ``named`` (as Delivered) and counts the others without naming
    them, which only a per-recipient report can then settle."""

    def __init__(self, batch_id: str, named: str) -> None:
        self.batch_id = batch_id
        self.named = named
        self.paths: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path: str = scope["path"]
        self.paths.append(path)
        if path.endswith("/delivery_report"):
            body: dict[str, Any] = {
                "type": "delivery_report_sms",
                "batch_id": self.batch_id,
                "total_message_count": 2,
                "statuses": [
                    {"code": 0, "status": "Delivered", "count": 1, "recipients": [self.named[1:]]},
                    {"code": 401, "status": "Dispatched", "count": 1},
                ],
            }
        else:
            body = {
                "type": "recipient_delivery_report_sms",
                "batch_id": self.batch_id,
                "recipient": path.rsplit("/", 1)[1],
                "code": 0,
                "status": "Delivered",
                "at": "2026-12-03T10:00:00.000Z",
            }
        raw = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": raw})


async def test_a_recipient_the_batch_report_does_not_name_is_asked_about_alone(
    pool: asyncpg.Pool,
    http: httpx.AsyncClient,
    sinch: SinchClient,
    sim: RunningSimulator,
    start_reconciler: StartReconciler,
) -> None:
    [(message_id, batch_id)] = await submit(pool, sinch, [[A, B]])
    stand_in = SinchStandIn(batch_id, named=A)
    async with live_server(stand_in) as base_url:
        client = SinchClient.for_api_token(
            http, service_plan_id="plan", api_token="t", base_url=base_url, retry_policy=NO_RETRY
        )
        await start_reconciler(client=client)
        await wait_until(lambda: all_final(pool, [message_id]), timeout_s=10, message="final")

    assert stand_in.paths == [
        f"/xms/v1/plan/batches/{batch_id}/delivery_report",
        f"/xms/v1/plan/batches/{batch_id}/delivery_report/{B}",
    ]
    async with pool.acquire() as connection:
        row = await message_row(connection, message_id)
        at = await connection.fetchval(
            "SELECT status_at FROM sms_recipient WHERE message_id = $1 AND msisdn = $2",
            message_id,
            B,
        )
    assert row.status == "delivered"
    reports = [
        d for k, d in zip(row.event_kinds, row.events, strict=True) if k == "delivery_report"
    ]
    assert [(d["source"], d["report"]["type"]) for d in reports] == [
        ("reconciliation", "delivery_report_sms"),
        ("reconciliation", "recipient_delivery_report_sms"),
    ]
    assert at is not None
