"""Recording the batches Sinch accepted: one message at a time, or many in one statement."""

from __future__ import annotations

import asyncpg
import pytest

from smsgateway.store import dispatch, outbox
from tests.integration.dispatch.accepted import insert_accepted, message_row

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_many_submissions_are_recorded_as_one_at_a_time_would_be(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as connection:
        sent = await insert_accepted(connection, ["+15550000101", "+15550000102"])
        scheduled = await insert_accepted(connection, status="scheduled")
        stolen = await insert_accepted(connection)
        claims = {c.message_id: c for c in await outbox.claim_due(connection, 10, 30, "w1")}
        # Another worker took this one over after its lease ended: its token is no longer ours.
        await connection.execute(
            "UPDATE outbox SET claim_token = gen_random_uuid() WHERE message_id = $1", stolen
        )
        held = await dispatch.record_submitted_many(
            connection,
            [
                dispatch.Submission(claims[sent], "BATCH-1", resolved_by_lookup=False),
                dispatch.Submission(claims[scheduled], "BATCH-2", resolved_by_lookup=True),
                dispatch.Submission(claims[stolen], "BATCH-3", resolved_by_lookup=False),
            ],
        )
        rows = {m: await message_row(connection, m) for m in (sent, scheduled, stolen)}

    assert held == [True, True, False]
    for message_id, batch_id in ((sent, "BATCH-1"), (scheduled, "BATCH-2"), (stolen, "BATCH-3")):
        row = rows[message_id]
        # A batch Sinch accepted is recorded even from a lost claim: it exists at Sinch.
        assert row.sinch_batch_id == batch_id
        assert row.status == "submitted"
        assert set(row.recipient_statuses) == {"submitted"}
        assert row.submitted_at is not None
        assert row.event_kinds[-1] == "submitted"
    assert rows[scheduled].events[-1]["resolved_by_lookup"] is True
    assert not rows[sent].in_outbox
    assert not rows[scheduled].in_outbox
    assert rows[stolen].in_outbox  # the other worker's row, left to it


async def test_a_message_already_ended_keeps_its_status(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as connection:
        message_id = await insert_accepted(connection)
        (claim,) = await outbox.claim_due(connection, 10, 30, "w1")
        # A delivery report that came early (by client_reference) already moved it on.
        await connection.execute(
            "UPDATE sms_log SET status = 'delivered' WHERE id = $1", message_id
        )
        await connection.execute(
            "UPDATE sms_recipient SET status = 'delivered' WHERE message_id = $1", message_id
        )
        (held,) = await dispatch.record_submitted_many(
            connection, [dispatch.Submission(claim, "BATCH-9", resolved_by_lookup=False)]
        )
        row = await message_row(connection, message_id)

    assert held
    assert row.sinch_batch_id == "BATCH-9"
    assert row.status == "delivered"
    assert row.recipient_statuses == ["delivered"]
