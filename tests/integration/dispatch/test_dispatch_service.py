"""One claimed message handed to the simulator: recorded once, rejected, expired or retried."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from prometheus_client import REGISTRY

from smsgateway.services.dispatch import Dispatcher, DispatchOutcome, DispatchPolicy
from smsgateway.services.messages import cancel_message
from smsgateway.sinch import SinchClient
from smsgateway.sinch.models import SendBatchRequest
from smsgateway.store import outbox
from smsgateway.store.cancellation import NotCancellableError
from tests.integration.dispatch.accepted import insert_accepted, message_row
from tests.integration.dispatch.harness import set_faults
from tests.support.polling import wait_until
from tests.support.sinch_simulator import RunningSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

DLR_URL = "https://gateway.example/webhooks/sinch/dlr/secret-path"


async def claim(pool: asyncpg.Pool, message_id: uuid.UUID, lease: float = 30) -> outbox.Claim:
    async with pool.acquire() as connection:
        claims = await outbox.claim_due(connection, 100, lease, "test")
    (found,) = [c for c in claims if c.message_id == message_id]
    return found


def dispatcher(pool: asyncpg.Pool, sinch: SinchClient) -> Dispatcher:
    return Dispatcher(pool, sinch, DispatchPolicy(dlr_callback_url=DLR_URL, lease_seconds=10.0))


async def sim_batches(sim: RunningSimulator, message_id: uuid.UUID) -> list[dict[str, object]]:
    response = await sim.client.get(sim.batches_path, params={"client_reference": str(message_id)})
    response.raise_for_status()
    batches: list[dict[str, object]] = response.json()["batches"]
    return batches


def sent_count(via: str) -> float:
    value = REGISTRY.get_sample_value("smsgw_dispatch_messages_sent_total", {"via": via})
    return value or 0.0


async def test_an_accepted_message_is_sent_and_recorded(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    async with pool.acquire() as connection:
        message_id = await insert_accepted(
            connection,
            ["+15551230001", "+15551230002", "+15551230003"],
            body="Hi ${name}, your code is 1234",
            sender="ACME",
            delivery_report="per_recipient",
            parameters={"name": {"+15551230001": "Ann", "default": "there"}},
            max_segments=3,
            expire_at=datetime.now(UTC) + timedelta(hours=1),
        )
    sent_before = sent_count("send")

    outcome = await dispatcher(pool, sinch).dispatch(await claim(pool, message_id))

    assert outcome is DispatchOutcome.SUBMITTED
    (batch,) = await sim_batches(sim, message_id)
    assert batch["to"] == ["+15551230001", "+15551230002", "+15551230003"]
    assert batch["from"] == "ACME"
    assert batch["body"] == "Hi ${name}, your code is 1234"
    assert batch["delivery_report"] == "per_recipient"
    assert batch["callback_url"] == DLR_URL  # ours, not the caller's webhook
    assert batch["client_reference"] == str(message_id)  # ours, not the caller's reference
    assert batch["parameters"] == {"name": {"+15551230001": "Ann", "default": "there"}}
    assert batch["max_number_of_message_parts"] == 3
    async with pool.acquire() as connection:
        row = await message_row(connection, message_id)
    assert row.status == "submitted"
    assert row.sinch_batch_id == batch["id"]
    assert row.submitted_at is not None
    assert row.recipient_statuses == ["submitted"] * 3
    assert row.event_kinds == ["submitted"]
    assert row.events[0]["batch_id"] == batch["id"]
    assert not row.in_outbox
    assert sent_count("send") == sent_before + 1


async def test_a_message_past_expire_at_expires_unsent(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    async with pool.acquire() as connection:
        message_id = await insert_accepted(
            connection,
            ["+15551230001", "+15551230002"],
            expire_at=datetime.now(UTC) - timedelta(seconds=1),
        )

    outcome = await dispatcher(pool, sinch).dispatch(await claim(pool, message_id))

    assert outcome is DispatchOutcome.EXPIRED
    assert await sim.batch_count(str(message_id)) == 0
    async with pool.acquire() as connection:
        row = await message_row(connection, message_id)
    assert row.status == "expired"
    assert row.recipient_statuses == ["expired", "expired"]
    assert row.event_kinds == ["expired"]
    assert row.sinch_batch_id is None
    assert not row.in_outbox


async def test_a_refused_request_is_rejected_with_sinchs_code_and_text(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    # Valid E.164 for our schema, too short for Sinch: the simulator answers 400.
    async with pool.acquire() as connection:
        message_id = await insert_accepted(connection, ["+15551230001", "+12345"])

    outcome = await dispatcher(pool, sinch).dispatch(await claim(pool, message_id))

    assert outcome is DispatchOutcome.REJECTED
    assert await sim.batch_count(str(message_id)) == 0
    async with pool.acquire() as connection:
        row = await message_row(connection, message_id)
    assert row.status == "rejected"
    assert row.status_code == "syntax_invalid_parameter_format"
    assert row.status_detail is not None
    assert "not a valid MSISDN" in row.status_detail
    assert row.recipient_statuses == ["rejected", "rejected"]
    assert row.event_kinds == ["rejected"]
    assert row.events[0]["http_status"] == 400
    assert not row.in_outbox


async def test_a_server_error_is_rescheduled_then_sent_once(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    async with pool.acquire() as connection:
        message_id = await insert_accepted(connection)
    await set_faults(sim, server_error_rate=1.0, server_error_status=503, max_faults=1)
    service = dispatcher(pool, sinch)

    first = await service.dispatch(await claim(pool, message_id))

    assert first is DispatchOutcome.RETRY
    async with pool.acquire() as connection:
        row = await message_row(connection, message_id)
        entry = await connection.fetchrow("SELECT attempts, last_error, claim_token FROM outbox")
        # Come back now rather than after the backoff.
        await connection.execute("UPDATE outbox SET due_at = now()")
    assert row.status == "queued"
    assert row.event_kinds == ["send_retry"]
    assert row.events[0]["reason"] == "server_error"
    assert entry["attempts"] == 1
    assert entry["claim_token"] is None
    assert "503" in entry["last_error"]

    second = await service.dispatch(await claim(pool, message_id))

    assert second is DispatchOutcome.SUBMITTED
    assert await sim.batch_count(str(message_id)) == 1
    async with pool.acquire() as connection:
        row = await message_row(connection, message_id)
    assert row.status == "submitted"
    assert row.event_kinds == ["send_retry", "submitted"]
    assert row.events[1]["attempt"] == 2
    assert not row.events[1]["resolved_by_lookup"]


async def test_a_rate_limit_is_retried_no_earlier_than_retry_after(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    async with pool.acquire() as connection:
        message_id = await insert_accepted(connection)
        before = await connection.fetchval("SELECT clock_timestamp()")
    await set_faults(sim, rate_limit_rate=1.0, retry_after_s=7, max_faults=1)

    outcome = await dispatcher(pool, sinch).dispatch(await claim(pool, message_id))

    assert outcome is DispatchOutcome.RETRY
    async with pool.acquire() as connection:
        due_at = await connection.fetchval("SELECT due_at FROM outbox")
        row = await message_row(connection, message_id)
    assert due_at - before >= timedelta(seconds=7)
    assert due_at - before < timedelta(seconds=9)
    assert row.events[0]["retry_after"] == 7
    assert row.events[0]["reason"] == "rate_limited"
    assert await sim.batch_count(str(message_id)) == 0


async def test_an_unanswered_send_that_sinch_recorded_is_not_sent_again(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    async with pool.acquire() as connection:
        message_id = await insert_accepted(connection)
    # The simulator records the batch, then never answers: the client times out.
    await set_faults(sim, timeout_rate=1.0, max_faults=1)

    outcome = await dispatcher(pool, sinch).dispatch(await claim(pool, message_id))

    # The client found it by client_reference within the same attempt, and says so.
    assert outcome is DispatchOutcome.RESOLVED
    (batch,) = await sim_batches(sim, message_id)
    async with pool.acquire() as connection:
        row = await message_row(connection, message_id)
    assert row.status == "submitted"
    assert row.sinch_batch_id == batch["id"]
    assert row.events[-1]["resolved_by_lookup"] is True
    assert not row.in_outbox


async def test_an_unknown_outcome_left_unresolved_is_resolved_by_the_next_try(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    async with pool.acquire() as connection:
        message_id = await insert_accepted(connection)
    # The send is recorded but unanswered, and the client's own lookup fails too (scope all).
    await set_faults(sim, timeout_rate=1.0, max_faults=2, scope="all")
    service = dispatcher(pool, sinch)

    first = await service.dispatch(await claim(pool, message_id))

    assert first is DispatchOutcome.RETRY
    assert await sim.batch_count(str(message_id)) == 1
    async with pool.acquire() as connection:
        await connection.execute("UPDATE outbox SET due_at = now()")
    lookups_before = sent_count("lookup")

    second = await service.dispatch(await claim(pool, message_id))

    assert second is DispatchOutcome.RESOLVED
    (batch,) = await sim_batches(sim, message_id)
    async with pool.acquire() as connection:
        row = await message_row(connection, message_id)
    assert row.sinch_batch_id == batch["id"]
    assert row.event_kinds == ["send_retry", "submitted"]
    assert row.events[0]["reason"] == "outcome_unknown"
    assert row.events[1]["resolved_by_lookup"]
    assert sent_count("lookup") == lookups_before + 1


async def test_a_send_sinch_did_not_answer_is_tried_again_only_after_the_unanswered_wait(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    async with pool.acquire() as connection:
        message_id = await insert_accepted(connection)
    # Unanswered, and the client's own look-up finds nothing either: a Sinch still working on
    # it. The next try starts with a look-up, which must come late enough to see the batch.
    await set_faults(sim, timeout_rate=1.0, max_faults=2, scope="all")
    policy = DispatchPolicy(
        dlr_callback_url=DLR_URL, lease_seconds=10.0, unanswered_wait_seconds=30.0
    )

    outcome = await Dispatcher(pool, sinch, policy).dispatch(await claim(pool, message_id))

    assert outcome is DispatchOutcome.RETRY
    async with pool.acquire() as connection:
        wait = await connection.fetchval(
            "SELECT extract(epoch FROM due_at - now()) FROM outbox WHERE message_id = $1",
            message_id,
        )
    assert 29.0 <= wait <= 31.0
    # Meanwhile a cancel cannot know either: it is refused as for a send under way.
    with pytest.raises(NotCancellableError) as refused:
        await cancel_message(
            pool, sinch, "default", message_id, lease_seconds=10, lookup_timeout_seconds=5
        )
    assert refused.value.status == "sending"
    # Once the wait is over, the cancel looks, finds the batch, and says so.
    async with pool.acquire() as connection:
        await connection.execute(
            "UPDATE outbox SET due_at = now() WHERE message_id = $1", message_id
        )
    with pytest.raises(NotCancellableError) as found:
        await cancel_message(
            pool, sinch, "default", message_id, lease_seconds=10, lookup_timeout_seconds=5
        )
    (batch,) = await sim_batches(sim, message_id)
    assert (found.value.status, found.value.batch_id) == ("submitted", batch["id"])


async def test_after_a_crash_the_next_claim_finds_the_batch_instead_of_sending(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    async with pool.acquire() as connection:
        message_id = await insert_accepted(connection, ["+15551230001", "+15551230002"])
    crashed = await claim(pool, message_id, lease=0.3)
    # The crashed worker got as far as Sinch accepting the batch, and no further.
    accepted = await sinch.send_batch(
        SendBatchRequest(
            to=["+15551230001", "+15551230002"], body="x", client_reference=str(message_id)
        )
    )

    claims: list[outbox.Claim] = []

    async def claimed_again() -> bool:
        async with pool.acquire() as connection:
            claims.extend(await outbox.claim_due(connection, 10, 30, "survivor"))
        return bool(claims)

    await wait_until(claimed_again, timeout_s=5, interval_s=0.05, message="lease expiry")
    (survivor,) = claims
    assert survivor.attempts == 2

    outcome = await dispatcher(pool, sinch).dispatch(survivor)

    assert outcome is DispatchOutcome.RESOLVED
    assert await sim.batch_count(str(message_id)) == 1
    async with pool.acquire() as connection:
        row = await message_row(connection, message_id)
        assert not await outbox.complete(connection, message_id, crashed.claim_token)
    assert row.sinch_batch_id == accepted.id
    assert row.status == "submitted"
    assert row.recipient_statuses == ["submitted", "submitted"]


async def test_a_transient_failure_past_expire_at_gives_up(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    async with pool.acquire() as connection:
        message_id = await insert_accepted(
            connection, expire_at=datetime.now(UTC) + timedelta(seconds=30)
        )
    await set_faults(sim, rate_limit_rate=1.0, retry_after_s=60, max_faults=1)

    outcome = await dispatcher(pool, sinch).dispatch(await claim(pool, message_id))

    assert outcome is DispatchOutcome.FAILED
    async with pool.acquire() as connection:
        row = await message_row(connection, message_id)
    assert row.status == "failed"
    assert row.status_code == "expired_while_retrying"
    assert row.status_detail is not None
    assert "429" in row.status_detail
    assert row.recipient_statuses == ["failed"]
    assert not row.in_outbox


async def test_a_cancelled_message_is_not_sent(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    async with pool.acquire() as connection:
        message_id = await insert_accepted(connection, status="cancelled")

    outcome = await dispatcher(pool, sinch).dispatch(await claim(pool, message_id))

    assert outcome is DispatchOutcome.SKIPPED
    assert await sim.batch_count(str(message_id)) == 0
    async with pool.acquire() as connection:
        assert await connection.fetchval("SELECT count(*) FROM outbox") == 0


async def test_a_lost_claim_sends_nothing(
    pool: asyncpg.Pool, sinch: SinchClient, sim: RunningSimulator
) -> None:
    async with pool.acquire() as connection:
        message_id = await insert_accepted(connection)
    # A claim made a lease ago (another worker took over after it ended).
    stale = replace(await claim(pool, message_id), claimed_monotonic=time.monotonic() - 3600)
    async with pool.acquire() as connection:
        await connection.execute("UPDATE outbox SET claim_token = gen_random_uuid()")

    outcome = await dispatcher(pool, sinch).dispatch(stale)

    assert outcome is DispatchOutcome.LOST_CLAIM
    assert await sim.batch_count(str(message_id)) == 0
