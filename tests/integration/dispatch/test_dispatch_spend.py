"""Spend given back: a message that ends unsent without costing anything returns what it took
from its tenant's spend caps; one that may have reached Sinch does not."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest

from smsgateway.domain.backoff import BackoffPolicy
from smsgateway.domain.counters import Draw
from smsgateway.services.dispatch import Dispatcher, DispatchOutcome, DispatchPolicy
from smsgateway.sinch import SinchClient
from smsgateway.store.messages import NewMessage
from smsgateway.store.protection import GuardedMessage, write_guarded
from tests.integration.dispatch.harness import set_faults
from tests.integration.dispatch.test_dispatch_service import DLR_URL, claim, dispatcher
from tests.support.sinch_simulator import RunningSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

DAY = "spend:default:2026-12-03:day_segments"


async def accept_with_spend(pool: asyncpg.Pool, recipients: tuple[str, ...]) -> uuid.UUID:
    """Stores a 2-segment message as the accept path does, taking the day's segments."""
    now = datetime.now(UTC)
    message = NewMessage(
        id=uuid.uuid4(),
        tenant="default",
        api_key_id=None,
        sender=None,
        body="x" * 200,
        encoding="GSM-7",
        segment_count=2,
        character_count=200,
        recipients=recipients,
        client_reference=None,
        status="queued",
        delivery_report="none",
        send_at=None,
        expire_at=None,
        callback_url=None,
        parameters=None,
        max_segments=None,
        created_at=now,
        due_at=now,
    )
    taken = Decimal(2 * len(recipients))
    draws = (Draw(DAY, taken, Decimal(100), label="day_segments"),)
    async with pool.acquire() as connection:
        [outcome] = await write_guarded(connection, [GuardedMessage(message, draws)])
    assert outcome.stored
    return message.id


async def day_segments(pool: asyncpg.Pool) -> Decimal:
    async with pool.acquire() as connection:
        amount: Decimal = await connection.fetchval(
            "SELECT amount FROM protection_counter WHERE key = $1", DAY
        )
    return amount


async def test_a_message_sinch_rejects_at_submit_gives_its_spend_back(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    kept = await accept_with_spend(pool, ("+15551230001",))
    # Valid E.164 for our schema, too short for Sinch: the simulator answers 400.
    refused = await accept_with_spend(pool, ("+15551230002", "+12345"))
    assert await day_segments(pool) == 6

    await dispatcher(pool, sinch).dispatch(await claim(pool, refused))
    assert await sim.batch_count(str(refused)) == 0
    assert await day_segments(pool) == 2, "the rejected message's 4 segments are back"
    async with pool.acquire() as connection:
        charged = await connection.fetch("SELECT id FROM sms_log WHERE spend_charge IS NOT NULL")
    assert [row["id"] for row in charged] == [kept]


async def test_a_send_that_may_have_reached_sinch_keeps_its_spend(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    message_id = await accept_with_spend(pool, ("+15551230001",))
    await set_faults(sim, server_error_rate=1.0, max_faults=1)
    # One try allowed, so the 5xx is given up on at once; a 5xx may have been processed.
    one_try = Dispatcher(
        pool,
        sinch,
        DispatchPolicy(dlr_callback_url=DLR_URL, backoff=BackoffPolicy(max_attempts=1)),
    )

    assert await one_try.dispatch(await claim(pool, message_id)) is DispatchOutcome.FAILED
    assert await day_segments(pool) == 2


async def test_giving_up_after_a_rate_limit_gives_the_spend_back(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    message_id = await accept_with_spend(pool, ("+15551230001",))
    await set_faults(sim, rate_limit_rate=1.0, max_faults=1)
    one_try = Dispatcher(
        pool,
        sinch,
        DispatchPolicy(dlr_callback_url=DLR_URL, backoff=BackoffPolicy(max_attempts=1)),
    )

    assert await one_try.dispatch(await claim(pool, message_id)) is DispatchOutcome.FAILED
    assert await day_segments(pool) == 0
