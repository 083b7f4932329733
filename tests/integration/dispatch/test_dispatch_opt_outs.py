"""STOP checked again at dispatch: a recipient who opted out after accept is marked opted_out
and left out of the batch; a message with nobody left ends rejected without a Sinch call."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from prometheus_client import REGISTRY

from smsgateway.services.dispatch import Dispatcher, DispatchOutcome, DispatchPolicy
from smsgateway.sinch import SinchClient
from smsgateway.store import outbox
from smsgateway.store.opt_outs import OptChange, record_change
from tests.integration.dispatch.accepted import callback_payloads, insert_accepted, message_row
from tests.integration.dispatch.harness import set_faults
from tests.support.sinch_simulator import RunningSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

A, B, C = "+15551230001", "+15551230002", "+15551230003"


def opted_out_count() -> float:
    return REGISTRY.get_sample_value("smsgw_recipients_opted_out_total") or 0.0


def ended_count(reason: str) -> float:
    value = REGISTRY.get_sample_value("smsgw_dispatch_messages_failed_total", {"reason": reason})
    return value or 0.0


async def opt(pool: asyncpg.Pool, msisdn: str, *, out: bool, minutes_ago: float = 0) -> None:
    change = OptChange(
        msisdn, out, datetime.now(UTC) - timedelta(minutes=minutes_ago), source="api"
    )
    async with pool.acquire() as connection:
        await record_change(connection, change)


async def claim(pool: asyncpg.Pool, message_id: uuid.UUID) -> outbox.Claim:
    async with pool.acquire() as connection:
        claims = await outbox.claim_due(connection, 100, 30.0, "test")
    (found,) = [c for c in claims if c.message_id == message_id]
    return found


def dispatcher(pool: asyncpg.Pool, sinch: SinchClient) -> Dispatcher:
    return Dispatcher(pool, sinch, DispatchPolicy(lease_seconds=10.0))


async def sent_to(sim: RunningSimulator, message_id: uuid.UUID) -> list[list[str]]:
    response = await sim.client.get(sim.batches_path, params={"client_reference": str(message_id)})
    response.raise_for_status()
    return [batch["to"] for batch in response.json()["batches"]]


async def test_a_recipient_who_opted_out_after_accept_is_left_out_of_the_batch(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    async with pool.acquire() as connection:
        message_id = await insert_accepted(connection, [A, B, C])
    await opt(pool, B, out=True)
    counted = opted_out_count()

    outcome = await dispatcher(pool, sinch).dispatch(await claim(pool, message_id))

    assert outcome is DispatchOutcome.SUBMITTED
    assert await sent_to(sim, message_id) == [[A, C]]
    async with pool.acquire() as connection:
        row = await message_row(connection, message_id)
        events = await callback_payloads(connection, message_id)
        opted_event = await connection.fetchrow(
            "SELECT recipient, status, detail FROM sms_event WHERE kind = 'opted_out'"
        )
    assert row.status == "submitted"
    assert row.recipient_statuses == ["submitted", "opted_out", "submitted"]
    assert row.event_kinds == ["opted_out", "submitted"]
    assert (opted_event["recipient"], opted_event["status"]) == (B, "opted_out")
    assert opted_event["detail"]["reason"] == "opted_out_before_send"
    assert [(e["recipient"], e["previous_status"], e["status"]) for e in events] == [
        (B, "queued", "opted_out"),
        (A, "queued", "submitted"),
        (C, "queued", "submitted"),
    ]
    assert events[0]["message_status"] == "queued"
    assert opted_out_count() == counted + 1


async def test_a_message_whose_every_recipient_opted_out_ends_rejected_unsent(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    async with pool.acquire() as connection:
        message_id = await insert_accepted(connection, [A, B])
        # B had opted out before accept already: stored opted_out, as the accept path does.
        await connection.execute(
            "UPDATE sms_recipient SET status = 'opted_out' WHERE message_id = $1 AND msisdn = $2",
            message_id,
            B,
        )
    await opt(pool, A, out=True)
    await opt(pool, B, out=True)
    counted, ended = opted_out_count(), ended_count("opted_out")

    outcome = await dispatcher(pool, sinch).dispatch(await claim(pool, message_id))

    assert outcome is DispatchOutcome.OPTED_OUT
    assert await sim.batch_count(str(message_id)) == 0
    async with pool.acquire() as connection:
        row = await message_row(connection, message_id)
        events = await callback_payloads(connection, message_id)
    # The status the accept path gives a message every recipient of which opted out.
    assert row.status == "rejected"
    assert row.status_code == "opted_out"
    assert row.recipient_statuses == ["opted_out", "opted_out"]
    assert row.event_kinds == ["opted_out", "rejected"]
    assert row.sinch_batch_id is None
    assert not row.in_outbox
    # Only A's status changed here; B's was final from the start.
    assert [(e["recipient"], e["status"], e["message_status"]) for e in events] == [
        (A, "opted_out", "rejected")
    ]
    assert opted_out_count() == counted + 1
    assert ended_count("opted_out") == ended + 1


async def test_a_number_that_opted_back_in_is_sent_to(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    async with pool.acquire() as connection:
        message_id = await insert_accepted(connection, [A])
    await opt(pool, A, out=True, minutes_ago=2)
    await opt(pool, A, out=False, minutes_ago=1)

    outcome = await dispatcher(pool, sinch).dispatch(await claim(pool, message_id))

    assert outcome is DispatchOutcome.SUBMITTED
    assert await sent_to(sim, message_id) == [[A]]


async def test_a_retry_leaves_out_whoever_opted_out_since_the_last_try(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    async with pool.acquire() as connection:
        message_id = await insert_accepted(connection, [A, B])
    await set_faults(sim, server_error_rate=1.0, server_error_status=503, max_faults=1)
    service = dispatcher(pool, sinch)
    assert await service.dispatch(await claim(pool, message_id)) is DispatchOutcome.RETRY
    await opt(pool, A, out=True)
    async with pool.acquire() as connection:
        await connection.execute("UPDATE outbox SET due_at = now()")

    outcome = await service.dispatch(await claim(pool, message_id))

    assert outcome is DispatchOutcome.SUBMITTED
    assert await sent_to(sim, message_id) == [[B]]
    async with pool.acquire() as connection:
        row = await message_row(connection, message_id)
    assert row.recipient_statuses == ["opted_out", "submitted"]


async def test_a_batch_an_earlier_try_created_is_recorded_for_everyone_in_it(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    async with pool.acquire() as connection:
        message_id = await insert_accepted(connection, [A, B])
    # The send reaches Sinch but its answer never comes back, nor does the client's lookup.
    await set_faults(sim, timeout_rate=1.0, max_faults=2, scope="all")
    service = dispatcher(pool, sinch)
    assert await service.dispatch(await claim(pool, message_id)) is DispatchOutcome.RETRY
    await opt(pool, A, out=True)
    async with pool.acquire() as connection:
        await connection.execute("UPDATE outbox SET due_at = now()")

    outcome = await service.dispatch(await claim(pool, message_id))

    # A was sent to before opting out: the batch is recorded as it is, nobody is marked.
    assert outcome is DispatchOutcome.RESOLVED
    assert await sent_to(sim, message_id) == [[A, B]]
    async with pool.acquire() as connection:
        row = await message_row(connection, message_id)
    assert row.recipient_statuses == ["submitted", "submitted"]
    assert "opted_out" not in row.event_kinds


async def test_a_lost_claim_marks_nobody(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    async with pool.acquire() as connection:
        message_id = await insert_accepted(connection, [A])
    await opt(pool, A, out=True)
    # A claim made a lease ago (another worker took over after it ended).
    stale = replace(await claim(pool, message_id), claimed_monotonic=time.monotonic() - 3600)
    async with pool.acquire() as connection:
        await connection.execute("UPDATE outbox SET claim_token = gen_random_uuid()")

    outcome = await dispatcher(pool, sinch).dispatch(stale)

    assert outcome is DispatchOutcome.LOST_CLAIM
    async with pool.acquire() as connection:
        row = await message_row(connection, message_id)
    assert row.recipient_statuses == ["queued"]
    assert row.in_outbox
