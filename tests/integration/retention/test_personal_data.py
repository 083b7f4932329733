"""Personal-data retention on a real database: each tenant's window redacts and deletes at the
right ages, messages not yet settled are never touched, sweepers running at once do no row
twice, and the API shows a redacted message as redacted (and a deleted one as 404)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import asyncpg
import pytest
import pytest_asyncio
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

from smsgateway.app import create_app
from smsgateway.domain.api_keys import Scope
from smsgateway.domain.retention import RetentionWindow, mask_number, mask_numbers_in_json
from smsgateway.services.api_keys import create_api_key
from smsgateway.services.retention import RetentionPolicy, RetentionSweeper
from smsgateway.store import retention_policies
from smsgateway.store.personal_data import json_mask_sql, number_mask_sql
from smsgateway.store.pool import create_pool
from tests.integration.webhooks.harness import (
    message,
    post_report,
    recipient_report,
    record_batch,
    send_message,
)
from tests.support.asgi import lifespan_client
from tests.support.settings import make_settings

pytestmark = pytest.mark.asyncio

SE = "+46701234567"
US = "+12025550143"


def policy(window: RetentionWindow, batch_size: int = 1000) -> RetentionPolicy:
    return RetentionPolicy(
        unmatched_report_max_age=timedelta(days=30),
        webhook_nonce_max_age=timedelta(minutes=10),
        batch_size=batch_size,
        personal_data=window,
    )


@pytest_asyncio.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(
        database_url, min_size=0, max_size=6, command_timeout=30, connect_timeout=5
    )
    try:
        yield pool
    finally:
        await pool.close()


async def seed_message(
    pool: asyncpg.Pool,
    tenant: str,
    *,
    age_days: float,
    status: str = "delivered",
    numbers: tuple[str, ...] = (SE, US),
    changed_days: float | None = None,
) -> uuid.UUID:
    """A message as the gateway leaves it: recipients, a report event, a callback and a
    protection event, each holding the numbers. Accepted ``age_days`` ago, last changed
    ``changed_days`` ago (by default then too)."""
    message_id = uuid.uuid4()
    age = timedelta(days=age_days)
    changed = age if changed_days is None else timedelta(days=changed_days)
    recipient_status = "delivered" if status == "delivered" else "queued"
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(
            "INSERT INTO sms_log (id, tenant, body, encoding, segment_count, character_count,"
            " recipient_count, status, parameters, created_at, updated_at) VALUES"
            " ($1, $2, 'Your code is 123456', 'GSM-7', 1, 19, $3, $4, $5, now() - $6::interval,"
            " now() - $7::interval)",
            message_id,
            tenant,
            len(numbers),
            status,
            {"name": dict.fromkeys(numbers, "Ada")},
            age,
            changed,
        )
        await connection.executemany(
            "INSERT INTO sms_recipient (message_id, position, msisdn, status)"
            " VALUES ($1, $2, $3, $4)",
            [(message_id, i, number, recipient_status) for i, number in enumerate(numbers)],
        )
        report = {"type": "recipient_delivery_report_sms", "recipient": numbers[0].lstrip("+")}
        await connection.execute(
            "INSERT INTO sms_event (message_id, recipient, kind, status, detail, occurred_at)"
            " VALUES ($1, $2, 'delivery_report', 'delivered', $3, now() - $4::interval)",
            message_id,
            numbers[0],
            {"report": report, "changed": list(numbers)},
            age,
        )
        await connection.execute(
            "INSERT INTO callback_event (id, message_id, stream, sequence, url, host, payload,"
            " status, created_at)"
            " VALUES ($1, $2, $2::uuid::text, 1, 'https://example.com/cb', 'example.com', $3,"
            " 'delivered', now() - $4::interval)",
            uuid.uuid4(),
            message_id,
            {"recipient": numbers[0], "status": "delivered"},
            age,
        )
        await connection.execute(
            "INSERT INTO protection_event (message_id, tenant, recipient, region, number_type,"
            " code, occurred_at)"
            " VALUES ($1, $2, $3, 'SE', 'mobile', 'monitored', now() - $4::interval)",
            message_id,
            tenant,
            numbers[0],
            age,
        )
    return message_id


async def state_of(pool: asyncpg.Pool, message_id: uuid.UUID) -> str:
    """'deleted', 'redacted' (checked to hold no number nor body anywhere) or 'kept'."""
    row = await pool.fetchrow(
        "SELECT body, parameters, redacted_at FROM sms_log WHERE id = $1", message_id
    )
    if row is None:
        assert (
            await pool.fetchval(
                "SELECT count(*) FROM sms_recipient WHERE message_id = $1", message_id
            )
            == 0
        )
        return "deleted"
    copies = await pool.fetchval(
        """
        SELECT concat_ws(' ', (SELECT string_agg(msisdn, ' ') FROM sms_recipient
                                WHERE message_id = $1),
                         (SELECT string_agg(recipient || detail::text, ' ') FROM sms_event
                          WHERE message_id = $1),
                         (SELECT string_agg(payload::text, ' ') FROM callback_event
                          WHERE message_id = $1),
                         (SELECT string_agg(recipient, ' ') FROM protection_event
                          WHERE message_id = $1))
        """,
        message_id,
    )
    if row["redacted_at"] is None:
        assert row["body"] == "Your code is 123456"
        assert "701234567" in copies
        return "kept"
    assert row["body"] == ""
    assert row["parameters"] is None
    assert "701234567" not in copies
    assert "2025550143" not in copies
    assert "+46*" in copies
    return "redacted"


async def test_each_tenant_is_redacted_and_deleted_at_the_ages_of_its_window(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as connection:
        await retention_policies.set_override(
            connection, "short", RetentionWindow(10, 20), updated_by="test"
        )
        await retention_policies.set_override(
            connection, "forever", RetentionWindow(None, None), updated_by="test"
        )
    ages = (5, 15, 25, 45, 100)
    seeded = {
        tenant: [await seed_message(pool, tenant, age_days=age) for age in ages]
        for tenant in ("short", "forever", "default")
    }

    # The gateway's window: redact after 30 days, delete after 60.
    result = await RetentionSweeper(pool, policy(RetentionWindow(30, 60))).sweep()

    assert result.failed_steps == ()
    states = {
        tenant: [await state_of(pool, message_id) for message_id in ids]
        for tenant, ids in seeded.items()
    }
    assert states == {
        "short": ["kept", "redacted", "deleted", "deleted", "deleted"],
        "forever": ["kept"] * 5,
        "default": ["kept", "kept", "kept", "redacted", "deleted"],
    }
    assert result.personal_data_deleted.messages == 4
    assert result.personal_data_redacted.messages == 2
    # Done is done: the next sweep finds nothing.
    again = await RetentionSweeper(pool, policy(RetentionWindow(30, 60))).sweep()
    assert again.personal_data_deleted.total == again.personal_data_redacted.total == 0


async def await_report(
    pool: asyncpg.Pool, message_id: uuid.UUID, *, expires_in: timedelta, held: bool = False
) -> None:
    """An ``awaiting_report`` row: Sinch's expiry ``expires_in`` from now (negative: past),
    and, when ``held``, a reconciler's claim under a live lease."""
    await pool.execute(
        "INSERT INTO awaiting_report (message_id, batch_id, due_at, expires_at, claim_token)"
        " VALUES ($1, 'B1', now() + interval '1 minute', now() + $2::interval, $3)",
        message_id,
        expires_in,
        uuid.uuid4() if held else None,
    )


async def test_messages_with_something_pending_are_never_redacted_nor_deleted(
    pool: asyncpg.Pool,
) -> None:
    queued = await seed_message(pool, "t", age_days=400, status="queued")
    await pool.execute("INSERT INTO outbox (message_id) VALUES ($1)", queued)
    scheduled = await seed_message(pool, "t", age_days=400, status="scheduled")
    await pool.execute("INSERT INTO outbox (message_id) VALUES ($1)", scheduled)
    # Not final, and Sinch may still report on it (its expiry, plus the grace, is ahead).
    awaited = await seed_message(pool, "t", age_days=400, status="submitted")
    await await_report(pool, awaited, expires_in=timedelta(days=1))
    past_expiry_in_grace = await seed_message(pool, "t", age_days=400, status="submitted")
    await await_report(pool, past_expiry_in_grace, expires_in=-timedelta(minutes=5))
    # Final, but a reconciler holds it: the answer it is about to apply must find it.
    held = await seed_message(pool, "t", age_days=400)
    await await_report(pool, held, expires_in=-timedelta(days=1), held=True)
    calling_back = await seed_message(pool, "t", age_days=400)
    await pool.execute(
        "UPDATE callback_event SET status = 'pending' WHERE message_id = $1", calling_back
    )
    in_flight = await seed_message(pool, "t", age_days=400)
    await pool.execute("INSERT INTO outbox (message_id) VALUES ($1)", in_flight)
    # Final: the next claim drops its row unasked, so the row holds nothing back.
    final_unclaimed = await seed_message(pool, "t", age_days=400)
    await await_report(pool, final_unclaimed, expires_in=timedelta(days=1))
    settled = await seed_message(pool, "t", age_days=400, status="failed")
    pending = (queued, scheduled, awaited, past_expiry_in_grace, held, calling_back, in_flight)

    for window in (RetentionWindow(1, None), RetentionWindow(1, 2)):
        await RetentionSweeper(pool, policy(window)).sweep()
        for message_id in pending:
            assert await state_of(pool, message_id) == "kept"
    assert await state_of(pool, settled) == "deleted"
    assert await state_of(pool, final_unclaimed) == "deleted"


async def test_messages_that_never_became_final_go_once_no_report_is_awaited(
    pool: asyncpg.Pool,
) -> None:
    # No outbox row, no report to wait for: reconciliation gave up (its row is gone), the
    # message asked for no reports, reconciliation was off past Sinch's expiry, or the
    # outbox row went without a final status.
    given_up = await seed_message(pool, "t", age_days=50, status="submitted")
    off_past_expiry = await seed_message(pool, "t", age_days=50, status="submitted")
    await await_report(pool, off_past_expiry, expires_in=-timedelta(days=47))
    stranded = await seed_message(pool, "t", age_days=50, status="queued")
    young = await seed_message(pool, "t", age_days=50, status="submitted", changed_days=20)
    gone = await seed_message(pool, "t", age_days=70, status="submitted")

    result = await RetentionSweeper(pool, policy(RetentionWindow(30, 60))).sweep()

    assert result.failed_steps == ()
    assert [
        await state_of(pool, message_id)
        for message_id in (given_up, off_past_expiry, stranded, young, gone)
    ] == ["redacted", "redacted", "redacted", "kept", "deleted"]


async def test_the_age_counts_from_the_last_change_not_the_acceptance(pool: asyncpg.Pool) -> None:
    # All accepted 100 days ago; final (last changed) at different times since.
    changed = (10, 40, 70)
    ids = [
        await seed_message(pool, "t", age_days=100, changed_days=days, status=status)
        for days in changed
        for status in ("delivered", "submitted")
    ]

    await RetentionSweeper(pool, policy(RetentionWindow(30, 60))).sweep()

    assert [await state_of(pool, message_id) for message_id in ids] == [
        "kept",
        "kept",
        "redacted",
        "redacted",
        "deleted",
        "deleted",
    ]


async def test_two_sweepers_at_once_share_the_work_and_do_no_message_twice(
    pool: asyncpg.Pool,
) -> None:
    ids = [await seed_message(pool, f"t{i % 3}", age_days=40 + i % 7) for i in range(60)]
    window = RetentionWindow(30, None)

    results = await asyncio.gather(
        RetentionSweeper(pool, policy(window, batch_size=4)).sweep(),
        RetentionSweeper(pool, policy(window, batch_size=4)).sweep(),
    )

    assert [r.failed_steps for r in results] == [(), ()]
    assert sum(r.personal_data_redacted.messages for r in results) == 60
    assert {await state_of(pool, message_id) for message_id in ids} == {"redacted"}
    # Each message was redacted in exactly one statement: one redaction time for all its rows.
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM sms_log AS m JOIN callback_event AS c ON c.message_id = m.id"
            " WHERE c.redacted_at <> m.redacted_at"
        )
        == 0
    )


async def test_inbound_messages_and_their_events_are_redacted_then_deleted(
    pool: asyncpg.Pool,
) -> None:
    async def receive(tenant: str | None, age_days: int) -> uuid.UUID:
        inbound_id = uuid.uuid4()
        await pool.execute(
            "INSERT INTO inbound_message (id, sinch_id, type, sender, recipient, body, payload,"
            " received_at, tenant) VALUES ($1, $2, 'mo_text', $3, '+12025550100', 'Call me',"
            " $4, now() - $5::interval, $6)",
            inbound_id,
            uuid.uuid4().hex,
            SE,
            {"from": SE.lstrip("+"), "to": "12025550100", "body": "Call me"},
            timedelta(days=age_days),
            tenant,
        )
        if tenant is not None:
            for sequence in (1, 2):
                await pool.execute(
                    "INSERT INTO callback_event (id, tenant, stream, sequence, url, host,"
                    " payload, status, created_at) VALUES ($1, $2, 'tenant:' || $2 || $3, $4,"
                    " 'https://example.com/cb', 'example.com', $5, 'delivered',"
                    " now() - $6::interval)",
                    uuid.uuid4(),
                    tenant,
                    str(inbound_id),
                    sequence,
                    {"message": {"sender": SE, "body": "Call me"}},
                    timedelta(days=age_days),
                )
        return inbound_id

    young, old, older, unassigned = (
        await receive("t", 5),
        await receive("t", 40),
        await receive("t", 90),
        await receive(None, 40),
    )

    await RetentionSweeper(pool, policy(RetentionWindow(30, 60))).sweep()

    rows = {
        row["id"]: row
        for row in await pool.fetch("SELECT id, sender, body, payload FROM inbound_message")
    }
    assert set(rows) == {young, old, unassigned}
    assert (rows[young]["sender"], rows[young]["body"]) == (SE, "Call me")
    for redacted in (old, unassigned):
        assert (rows[redacted]["sender"], rows[redacted]["body"]) == ("+46*", None)
        assert rows[redacted]["payload"] == {"from": "46*", "to": "1*"}
    events = await pool.fetch("SELECT stream, sequence, payload FROM callback_event")
    by_stream = {(row["stream"], row["sequence"]): row["payload"] for row in events}
    # The deleted ones' stream keeps its newest event (redacted), for the next sequence number.
    assert set(by_stream) == {
        (f"tenant:t{young}", 1),
        (f"tenant:t{young}", 2),
        (f"tenant:t{old}", 1),
        (f"tenant:t{old}", 2),
        (f"tenant:t{older}", 2),
    }
    assert by_stream[(f"tenant:t{young}", 1)]["message"] == {"sender": SE, "body": "Call me"}
    assert by_stream[(f"tenant:t{old}", 1)]["message"] == {"sender": "+46*", "body": None}
    assert by_stream[(f"tenant:t{older}", 2)]["message"] == {"sender": "+46*", "body": None}


async def test_the_api_shows_a_redacted_message_as_redacted_and_a_deleted_one_as_404(
    database_url: str, pool: asyncpg.Pool
) -> None:
    key = (await create_api_key(pool, name="sender")).key
    settings = make_settings(database_url, SINCH_NUMBER="+12025550123")
    async with lifespan_client(create_app(settings)) as client:
        client.headers["X-API-Key"] = key
        message_id = await send_message(client, [SE])
        batch = f"BATCH{uuid.uuid4().hex[:20].upper()}"
        await record_batch(database_url, message_id, batch)
        report = recipient_report(batch, SE, "Delivered", 0, "2026-11-26T10:02:42Z")
        assert (await post_report(client, report)).status_code == 200
        await pool.execute(
            "DELETE FROM awaiting_report WHERE message_id = $1", uuid.UUID(message_id)
        )
        await pool.execute(
            "UPDATE callback_event SET status = 'delivered' WHERE message_id = $1",
            uuid.UUID(message_id),
        )
        kept = await message(client, message_id)
        assert (kept["status"], kept["redacted"], kept["redacted_at"]) == ("delivered", False, None)
        await pool.execute(
            "UPDATE sms_log SET created_at = now() - interval '60 hours',"
            " updated_at = now() - interval '60 hours' WHERE id = $1",
            uuid.UUID(message_id),
        )

        await RetentionSweeper(pool, policy(RetentionWindow(2, None))).sweep()

        redacted = await message(client, message_id)
        assert redacted["redacted"] is True
        assert redacted["redacted_at"] is not None
        assert redacted["body"] == ""
        assert redacted["recipients"] == [
            {**kept["recipients"][0], "to": "+46*"}  # type: ignore[index]
        ]
        assert "701234567" not in json.dumps(redacted)
        listed = (await client.get("/v1/messages")).json()["items"]
        assert [(m["id"], m["redacted"]) for m in listed] == [(message_id, True)]

        await RetentionSweeper(pool, policy(RetentionWindow(2, 3))).sweep()
        assert (await client.get(f"/v1/messages/{message_id}")).status_code == 200
        await pool.execute(
            "UPDATE sms_log SET created_at = now() - interval '4 days',"
            " updated_at = now() - interval '4 days' WHERE id = $1",
            uuid.UUID(message_id),
        )
        await RetentionSweeper(pool, policy(RetentionWindow(2, 3))).sweep()
        gone = await client.get(f"/v1/messages/{message_id}")
        assert gone.status_code == 404
        assert gone.headers["content-type"].startswith("application/problem+json")


async def test_an_admin_sets_and_removes_a_tenants_window(
    database_url: str, pool: asyncpg.Pool
) -> None:
    admin = (await create_api_key(pool, name="admin", scopes=frozenset({Scope.ADMIN}))).key
    sender = (await create_api_key(pool, name="sender", tenant="acme")).key
    settings = make_settings(database_url, redact_after_days=30)
    async with lifespan_client(create_app(settings)) as client:
        client.headers["X-API-Key"] = admin
        shown = (await client.get("/v1/admin/retention/acme")).json()
        assert shown["source"] == "gateway default"
        assert (shown["redact_after_days"], shown["delete_after_days"]) == (30, None)

        put = await client.put(
            "/v1/admin/retention/acme", json={"redact_after_days": 7, "delete_after_days": 90}
        )
        assert put.status_code == 200, put.text
        assert put.json()["source"] == "stored"
        assert put.json()["updated_by"] == "api_key:admin"
        stored = (await client.get("/v1/admin/retention/acme")).json()
        assert (stored["redact_after_days"], stored["delete_after_days"]) == (7, 90)

        refused = await client.put(
            "/v1/admin/retention/acme", json={"redact_after_days": 0, "delete_after_days": None}
        )
        assert refused.status_code == 422
        assert refused.headers["content-type"].startswith("application/problem+json")

        removed = (await client.delete("/v1/admin/retention/acme")).json()
        assert (removed["source"], removed["redact_after_days"]) == ("gateway default", 30)

        client.headers["X-API-Key"] = sender
        forbidden = await client.put(
            "/v1/admin/retention/acme", json={"redact_after_days": 1, "delete_after_days": 1}
        )
        assert forbidden.status_code == 403


async def test_postgres_masks_numbers_exactly_as_the_domain_does(pool: asyncpg.Pool) -> None:
    # Every country calling code, with and without '+', short and long, in a column and in JSON.
    numbers = [
        f"{plus}{code}{rest}"
        for code in sorted(str(c) for c in COUNTRY_CODE_TO_REGION_CODE)
        for rest in ("7012345", "701234567890")
        for plus in ("+", "")
        if len(code + rest) <= 15
    ] + ["+9991234567", "+6834002", "12", "", "+46*"]
    document = json.dumps({"to": numbers, "by": {n: n for n in numbers}})
    rows = await pool.fetch(
        f"SELECT {number_mask_sql('n')} AS masked FROM unnest($1::text[]) AS n", numbers
    )
    assert [row["masked"] for row in rows] == [mask_number(n) for n in numbers]
    in_json = await pool.fetchval(f"SELECT {json_mask_sql('$1::jsonb')}", json.loads(document))
    assert in_json == json.loads(mask_numbers_in_json(document))


async def test_the_sweep_pauses_after_each_statement_that_changed_rows(
    pool: asyncpg.Pool,
) -> None:
    for _ in range(5):
        await seed_message(pool, "t", age_days=400)
    left_at_each_pause: list[tuple[float, int]] = []

    async def sleep(seconds: float) -> None:
        left = await pool.fetchval("SELECT count(*) FROM sms_log")
        left_at_each_pause.append((seconds, left))

    paused = replace(
        policy(RetentionWindow(None, 30), batch_size=2), batch_pause=timedelta(seconds=0.25)
    )
    result = await RetentionSweeper(pool, paused, sleep=sleep).sweep()

    assert result.personal_data_deleted.messages == 5
    # Batches of 2, 2 and 1, each followed by the pause; probes that find nothing are not.
    assert left_at_each_pause == [(0.25, 3), (0.25, 1), (0.25, 0)]

    await seed_message(pool, "t", age_days=400)
    flat_out = policy(RetentionWindow(None, 30), batch_size=2)
    await RetentionSweeper(pool, flat_out, sleep=sleep).sweep()
    assert len(left_at_each_pause) == 3
