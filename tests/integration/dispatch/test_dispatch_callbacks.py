"""Status changes the dispatcher makes queue the caller's status callbacks, in the same
transaction: submitted, rejected, expired and failed; to the message's callback_url, else its
API key's default, else nowhere."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from smsgateway.services.api_keys import create_api_key
from smsgateway.services.dispatch import Dispatcher, DispatchOutcome, DispatchPolicy
from smsgateway.sinch import SinchClient
from smsgateway.store import outbox
from tests.integration.dispatch.accepted import (
    CALLER_HOOK,
    callback_payloads,
    insert_accepted,
    message_row,
)
from tests.integration.dispatch.harness import set_faults
from tests.support.sinch_simulator import RunningSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

A, B, C = "+15551230001", "+15551230002", "+15551230003"


async def claim(pool: asyncpg.Pool, message_id: uuid.UUID) -> outbox.Claim:
    async with pool.acquire() as connection:
        claims = await outbox.claim_due(connection, 100, 30.0, "test")
    (found,) = [c for c in claims if c.message_id == message_id]
    return found


async def dispatched(pool: asyncpg.Pool, sinch: SinchClient, message_id: uuid.UUID) -> str:
    service = Dispatcher(pool, sinch, DispatchPolicy(lease_seconds=10.0))
    return (await service.dispatch(await claim(pool, message_id))).value


async def payloads(pool: asyncpg.Pool, message_id: uuid.UUID) -> list[dict[str, object]]:
    async with pool.acquire() as connection:
        return await callback_payloads(connection, message_id)


def moves(events: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return [
        (e["recipient"], e["previous_status"], e["status"], e["message_status"]) for e in events
    ]


async def test_sending_queues_a_submitted_event_per_recipient(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    async with pool.acquire() as connection:
        message_id = await insert_accepted(connection, [A, B, C])

    assert await dispatched(pool, sinch, message_id) == DispatchOutcome.SUBMITTED

    events = await payloads(pool, message_id)
    assert moves(events) == [
        (A, "queued", "submitted", "submitted"),
        (B, "queued", "submitted", "submitted"),
        (C, "queued", "submitted", "submitted"),
    ]
    assert [e["sequence"] for e in events] == [1, 2, 3]
    assert {e["url"] for e in events} == {CALLER_HOOK}
    assert {e["client_reference"] for e in events} == {"callers-own-ref"}
    assert {e["type"] for e in events} == {"recipient.status_changed"}
    # Our own change: Sinch gave no code and no times.
    assert {(e["code"], e["status_at"], e["operator_status_at"]) for e in events} == {
        (None, None, None)
    }


async def test_a_scheduled_message_sent_at_its_time_moves_from_scheduled(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    async with pool.acquire() as connection:
        message_id = await insert_accepted(connection, [A], status="scheduled")
        await connection.execute(
            "UPDATE sms_recipient SET status = 'scheduled' WHERE message_id = $1", message_id
        )

    assert await dispatched(pool, sinch, message_id) == DispatchOutcome.SUBMITTED

    assert moves(await payloads(pool, message_id)) == [(A, "scheduled", "submitted", "submitted")]


async def test_a_message_sinch_refuses_queues_rejected_events(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    # Valid E.164 for our schema, too short for Sinch: the simulator answers 400.
    async with pool.acquire() as connection:
        message_id = await insert_accepted(connection, [A, "+12345"])

    assert await dispatched(pool, sinch, message_id) == DispatchOutcome.REJECTED

    assert moves(await payloads(pool, message_id)) == [
        (A, "queued", "rejected", "rejected"),
        ("+12345", "queued", "rejected", "rejected"),
    ]


async def test_a_message_past_expire_at_queues_expired_events(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    async with pool.acquire() as connection:
        message_id = await insert_accepted(
            connection, [A], expire_at=datetime.now(UTC) - timedelta(seconds=1)
        )

    assert await dispatched(pool, sinch, message_id) == DispatchOutcome.EXPIRED

    assert moves(await payloads(pool, message_id)) == [(A, "queued", "expired", "expired")]


async def test_giving_up_queues_failed_events_and_a_retry_queues_none(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    await set_faults(sim, rate_limit_rate=1.0, retry_after_s=60, max_faults=2)
    async with pool.acquire() as connection:
        retried = await insert_accepted(connection, [A])
    assert await dispatched(pool, sinch, retried) == DispatchOutcome.RETRY
    async with pool.acquire() as connection:
        given_up = await insert_accepted(
            connection, [B], expire_at=datetime.now(UTC) + timedelta(seconds=30)
        )
    assert await dispatched(pool, sinch, given_up) == DispatchOutcome.FAILED

    assert await payloads(pool, retried) == []
    assert moves(await payloads(pool, given_up)) == [(B, "queued", "failed", "failed")]


async def test_an_api_keys_default_callback_url_is_used_and_no_route_queues_nothing(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    created = await create_api_key(pool, name="hooked", callback_url="https://keys.example/status")
    async with pool.acquire() as connection:
        by_key = await insert_accepted(
            connection, [A], callback_url=None, api_key_id=created.record.id
        )
    assert await dispatched(pool, sinch, by_key) == DispatchOutcome.SUBMITTED
    async with pool.acquire() as connection:
        nowhere = await insert_accepted(connection, [B], callback_url=None)
    assert await dispatched(pool, sinch, nowhere) == DispatchOutcome.SUBMITTED

    [event] = await payloads(pool, by_key)
    assert event["url"] == "https://keys.example/status"
    assert await payloads(pool, nowhere) == []
    async with pool.acquire() as connection:
        row = await message_row(connection, nowhere)
    assert row.recipient_statuses == ["submitted"]
