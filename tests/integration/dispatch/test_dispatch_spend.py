"""Spend given back: a message that ends unsent without costing anything returns what it took
from its tenant's spend caps; one that may have reached Sinch does not."""

from __future__ import annotations

import json
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
from tests.integration.dispatch.test_dispatch_opt_outs import opt, sent_to
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


MONEY = "spend:default:2026-12-03:day_amount"


async def accept_charging_money(pool: asyncpg.Pool, recipients: tuple[str, ...]) -> uuid.UUID:
    """As ``accept_with_spend``, also taking 0.10 per recipient from the day's money cap."""
    message_id = await accept_with_spend(pool, recipients)
    money = Decimal("0.10") * len(recipients)
    async with pool.acquire() as connection:
        await connection.execute(
            "INSERT INTO protection_counter (key, amount, updated_at) VALUES ($1, $2, now())"
            " ON CONFLICT (key) DO UPDATE SET amount = protection_counter.amount + $2",
            MONEY,
            money,
        )
        await connection.execute(
            "UPDATE sms_log SET spend_charge = spend_charge || jsonb_build_object($2::text,"
            " $3::text) WHERE id = $1",
            message_id,
            MONEY,
            str(money),
        )
    return message_id


async def counters_and_charge(
    pool: asyncpg.Pool, message_id: uuid.UUID
) -> tuple[Decimal, Decimal, dict[str, Decimal] | None]:
    async with pool.acquire() as connection:
        money: Decimal = await connection.fetchval(
            "SELECT amount FROM protection_counter WHERE key = $1", MONEY
        )
        charge = await connection.fetchval(
            "SELECT spend_charge::text FROM sms_log WHERE id = $1", message_id
        )
    kept = None if charge is None else {k: Decimal(v) for k, v in json.loads(charge).items()}
    return await day_segments(pool), money, kept


async def test_recipients_who_opted_out_before_dispatch_give_back_their_share_once(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    a, b, c = "+15551230001", "+15551230002", "+15551230003"
    message_id = await accept_charging_money(pool, (a, b, c))
    assert (await counters_and_charge(pool, message_id))[:2] == (6, Decimal("0.30"))
    await opt(pool, b, out=True)
    # The first try leaves b out, then Sinch answers 503: retried later, b's share stays back.
    await set_faults(sim, server_error_rate=1.0, server_error_status=503, max_faults=1)
    service = dispatcher(pool, sinch)
    assert await service.dispatch(await claim(pool, message_id)) is DispatchOutcome.RETRY
    assert await counters_and_charge(pool, message_id) == (
        4,
        Decimal("0.20"),
        {DAY: Decimal(4), MONEY: Decimal("0.20")},
    )
    async with pool.acquire() as connection:
        await connection.execute("UPDATE outbox SET due_at = now()")

    assert await service.dispatch(await claim(pool, message_id)) is DispatchOutcome.SUBMITTED

    assert await sent_to(sim, message_id) == [[a, c]]
    segments, money, charge = await counters_and_charge(pool, message_id)
    assert (segments, money) == (4, Decimal("0.20")), "b's share came back once, not twice"
    assert charge == {DAY: Decimal(4), MONEY: Decimal("0.20")}


async def test_a_message_everyone_left_before_dispatch_gives_back_everything(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    kept = await accept_charging_money(pool, ("+15551230001",))
    a, b = "+15551230004", "+15551230005"
    gone = await accept_charging_money(pool, (a, b))
    await opt(pool, a, out=True)
    await opt(pool, b, out=True)

    assert await dispatcher(pool, sinch).dispatch(await claim(pool, gone)) is (
        DispatchOutcome.OPTED_OUT
    )

    assert await sim.batch_count(str(gone)) == 0
    assert await counters_and_charge(pool, gone) == (2, Decimal("0.10"), None)
    assert (await counters_and_charge(pool, kept))[2] == {DAY: Decimal(2), MONEY: Decimal("0.10")}
