"""Delivery reports applied a batch per transaction (store.reports.record_reports).

The webhook tests drive reports one HTTP call at a time; these hand the store whole batches,
as the service's group commit does under load: several messages, repeats and unknown batches
in one transaction, each report still getting its own outcome.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import pytest_asyncio

from smsgateway.domain.status import RecipientReport, RecipientStatus
from smsgateway.store.reports import (
    IncomingReport,
    RecipientUpdate,
    ReportOutcome,
    record_report,
    record_reports,
)
from tests.integration.dispatch.accepted import insert_accepted, open_pool

pytestmark = pytest.mark.asyncio(loop_scope="session")

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest_asyncio.fixture(loop_scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    opened = await open_pool(database_url)
    try:
        yield opened
    finally:
        await opened.close()


async def submitted(pool: asyncpg.Pool, batch_id: str, recipients: Sequence[str]) -> uuid.UUID:
    """A message handed to Sinch as ``batch_id``."""
    async with pool.acquire() as connection:
        message_id = await insert_accepted(connection, recipients, callback_url=None)
        await connection.execute(
            "UPDATE sms_log SET sinch_batch_id = $2, status = 'submitted' WHERE id = $1",
            message_id,
            batch_id,
        )
        await connection.execute(
            "UPDATE sms_recipient SET status = 'submitted' WHERE message_id = $1", message_id
        )
    return message_id


def report(
    batch_id: str, msisdn: str, status: RecipientStatus, minute: int, code: int = 0
) -> IncomingReport:
    """A per-recipient report; the same arguments make the very same report (dedupe key)."""
    at = T0 + timedelta(minutes=minute)
    return IncomingReport(
        batch_id=batch_id,
        message_ref=None,
        client_reference=None,
        report_type="recipient_delivery_report_sms",
        payload={"batch_id": batch_id, "recipient": msisdn, "status": status.value, "m": minute},
        dedupe_key=f"{batch_id}:{msisdn}:{status.value}:{minute}:{code}",
        updates=(RecipientUpdate(msisdn, RecipientReport(status, code, at)),),
        event_recipient=msisdn,
        event_status=status,
        event_code=code,
    )


async def state_of(pool: asyncpg.Pool, message_id: uuid.UUID) -> tuple[str, list[tuple[str, str]]]:
    async with pool.acquire() as connection:
        status = await connection.fetchval("SELECT status FROM sms_log WHERE id = $1", message_id)
        rows = await connection.fetch(
            "SELECT msisdn, status FROM sms_recipient WHERE message_id = $1 ORDER BY position",
            message_id,
        )
    return status, [(row["msisdn"], row["status"]) for row in rows]


async def test_each_report_of_a_batch_gets_its_own_outcome(pool: asyncpg.Pool) -> None:
    first = await submitted(pool, "BATCH-A", ["+15550000001", "+15550000002"])
    second = await submitted(pool, "BATCH-B", ["+15550000003"])
    delivered = report("BATCH-A", "+15550000001", RecipientStatus.DELIVERED, 1)
    batch = [
        delivered,
        delivered,  # Sinch's retry arriving in the same batch
        report("BATCH-A", "+15550000002", RecipientStatus.DISPATCHED, 1),
        report("BATCH-UNKNOWN", "+15550000009", RecipientStatus.DELIVERED, 1),
        report("BATCH-B", "+15550000003", RecipientStatus.FAILED, 2, code=61),
        # An intermediate status after the final one: stored, changes nothing.
        report("BATCH-A", "+15550000001", RecipientStatus.DISPATCHED, 0),
    ]

    async with pool.acquire() as connection:
        results = await record_reports(connection, batch)

    assert [result.outcome for result in results] == [
        ReportOutcome.APPLIED,
        ReportOutcome.DUPLICATE,
        ReportOutcome.APPLIED,
        ReportOutcome.UNKNOWN_BATCH,
        ReportOutcome.APPLIED,
        ReportOutcome.UNCHANGED,
    ]
    assert results[0].message_id == first
    assert results[4].message_id == second
    assert await state_of(pool, first) == (
        "submitted",
        [("+15550000001", "delivered"), ("+15550000002", "dispatched")],
    )
    assert await state_of(pool, second) == ("failed", [("+15550000003", "failed")])
    async with pool.acquire() as connection:
        events = await connection.fetchval(
            "SELECT count(*) FROM sms_event WHERE message_id = $1 AND kind = 'delivery_report'",
            first,
        )
        kept = await connection.fetchval(
            "SELECT count(*) FROM unmatched_report WHERE batch_id = 'BATCH-UNKNOWN'"
        )
    assert events == 3  # the repeat is stored once
    assert kept == 1


@pytest.mark.parametrize("seed", range(6))
async def test_a_batch_ends_where_the_same_reports_one_by_one_end(
    pool: asyncpg.Pool, seed: int
) -> None:
    recipients = [f"+1555100{seed}{n:03d}" for n in range(4)]
    together = await submitted(pool, f"TOGETHER-{seed}", recipients)
    apart = await submitted(pool, f"APART-{seed}", recipients)
    rng = random.Random(seed)
    statuses = [
        RecipientStatus.SUBMITTED,
        RecipientStatus.DISPATCHED,
        RecipientStatus.DELIVERED,
        RecipientStatus.FAILED,
        RecipientStatus.EXPIRED,
    ]
    plan = [(rng.choice(recipients), rng.choice(statuses), rng.randrange(5)) for _ in range(14)]
    plan += rng.sample(plan, 4)  # repeats, as Sinch retries

    async with pool.acquire() as connection:
        await record_reports(connection, [report(f"TOGETHER-{seed}", *step) for step in plan])
        for step in plan:
            await record_report(connection, report(f"APART-{seed}", *step))

    assert await state_of(pool, together) == await state_of(pool, apart)


async def test_reports_kept_early_are_applied_before_the_one_that_finds_them(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as connection:
        message_id = await insert_accepted(connection, ["+15550000021"], callback_url=None)
        (early,) = await record_reports(
            connection, [report("BATCH-LATE", "+15550000021", RecipientStatus.DISPATCHED, 1)]
        )
        assert early.outcome is ReportOutcome.UNKNOWN_BATCH
        # The dispatcher records the batch id, but (say) crashed before looking for reports.
        await connection.execute(
            "UPDATE sms_log SET sinch_batch_id = 'BATCH-LATE', status = 'submitted' WHERE id = $1",
            message_id,
        )
        await connection.execute(
            "UPDATE sms_recipient SET status = 'submitted' WHERE message_id = $1", message_id
        )
        (final,) = await record_reports(
            connection, [report("BATCH-LATE", "+15550000021", RecipientStatus.DELIVERED, 2)]
        )
        events = await connection.fetch(
            "SELECT status, detail ? 'applied_late' AS late FROM sms_event"
            " WHERE message_id = $1 AND kind = 'delivery_report' ORDER BY id",
            message_id,
        )
        kept = await connection.fetchval(
            "SELECT count(*) FROM unmatched_report WHERE batch_id = 'BATCH-LATE'"
        )

    assert final.outcome is ReportOutcome.APPLIED
    assert [(row["status"], row["late"]) for row in events] == [
        ("dispatched", True),
        ("delivered", False),
    ]
    assert kept == 0
    assert await state_of(pool, message_id) == ("delivered", [("+15550000021", "delivered")])
