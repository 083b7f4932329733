"""The accept write checks opt-outs itself: a batch in which a recipient opted out stores
nothing in its statement, takes no counter, and the write tells which recipients it found."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest

from smsgateway.store.messages import OptOutsFoundError, insert_accepted
from smsgateway.store.opt_outs import OptChange, record_change
from smsgateway.store.protection import GuardedMessage, write_guarded
from tests.integration.store.test_protection_counters import CAP, guarded

pytestmark = pytest.mark.asyncio

STOPPED = "+46701112233"


def to(
    item: GuardedMessage, *recipients: str, opted_out: frozenset[str] = frozenset()
) -> GuardedMessage:
    message = dataclasses.replace(item.message, recipients=recipients, opted_out=opted_out)
    return dataclasses.replace(item, message=message)


async def stop(connection: asyncpg.Connection, *, tenant: str | None, sender: str | None) -> None:
    change = OptChange(STOPPED, True, datetime.now(UTC), "api", tenant=tenant, sender=sender)
    assert await record_change(connection, change) is not None


async def stored_ids(connection: asyncpg.Connection) -> set[object]:
    rows = await connection.fetch("SELECT id FROM sms_log WHERE tenant = 'capped'")
    return {row["id"] for row in rows}


async def spent(connection: asyncpg.Connection) -> Decimal | None:
    amount: Decimal | None = await connection.fetchval(
        "SELECT amount FROM protection_counter WHERE key = 'spend:capped:day'"
    )
    return amount


async def test_the_plain_write_stores_nothing_and_names_the_opted_out_recipient(
    connection: asyncpg.Connection,
) -> None:
    await stop(connection, tenant=None, sender=None)
    clean, blocked = guarded(1).message, to(guarded(1), "+46700000001", STOPPED).message
    with pytest.raises(OptOutsFoundError) as raised:
        await insert_accepted(connection, [clean, blocked])
    assert raised.value.found == {blocked.id: frozenset({STOPPED})}
    assert await stored_ids(connection) == set()
    assert await connection.fetchval("SELECT count(*) FROM outbox") == 0
    assert await connection.fetchval("SELECT count(*) FROM sms_event") == 0


async def test_a_batch_with_counters_stores_the_others_and_charges_only_them(
    connection: asyncpg.Connection,
) -> None:
    await stop(connection, tenant="capped", sender=None)
    batch = [guarded(2), to(guarded(3), STOPPED), guarded(4)]
    outcomes = await write_guarded(connection, batch)
    assert [outcome.stored for outcome in outcomes] == [True, False, True]
    assert [outcome.opted_out for outcome in outcomes] == [
        frozenset(),
        frozenset({STOPPED}),
        frozenset(),
    ]
    assert await stored_ids(connection) == {batch[0].message.id, batch[2].message.id}
    assert await spent(connection) == Decimal(6)
    events = await connection.fetchval("SELECT count(*) FROM protection_event")
    assert events == 0


async def test_the_precise_path_rolls_its_counters_back_when_it_finds_an_opt_out(
    connection: asyncpg.Connection,
) -> None:
    await write_guarded(connection, [guarded(8)])
    await stop(connection, tenant="capped", sender=None)
    # Past the cap as a whole: the batch goes message by message in a transaction.
    batch = [to(guarded(1), STOPPED), guarded(2), guarded(1)]
    outcomes = await write_guarded(connection, batch)
    assert [outcome.opted_out for outcome in outcomes] == [frozenset({STOPPED}), *[frozenset()] * 2]
    assert [outcome.stored for outcome in outcomes] == [False, True, False]
    assert await spent(connection) == CAP, "the opted-out message took nothing"


async def test_a_recipient_already_marked_opted_out_is_stored_so(
    connection: asyncpg.Connection,
) -> None:
    await stop(connection, tenant=None, sender=None)
    item = to(guarded(1), "+46700000001", STOPPED, opted_out=frozenset({STOPPED}))
    outcomes = await write_guarded(connection, [item])
    assert outcomes[0].stored
    statuses = await connection.fetch(
        "SELECT msisdn, status FROM sms_recipient WHERE message_id = $1 ORDER BY position",
        item.message.id,
    )
    assert [tuple(row) for row in statuses] == [
        ("+46700000001", "queued"),
        (STOPPED, "opted_out"),
    ]


@pytest.mark.parametrize(
    ("stop_tenant", "stop_sender", "message_sender", "blocks"),
    [
        ("capped", "+15550001", "+15550001", True),
        ("capped", "+15550001", "+15550002", False),
        ("other", None, None, False),
        ("capped", None, "+15550002", True),
        (None, None, "+15550002", True),
    ],
)
async def test_the_check_scopes_opt_outs_by_tenant_and_sender(
    connection: asyncpg.Connection,
    stop_tenant: str | None,
    stop_sender: str | None,
    message_sender: str | None,
    blocks: bool,
) -> None:
    await stop(connection, tenant=stop_tenant, sender=stop_sender)
    item = to(guarded(1), STOPPED)
    item = dataclasses.replace(
        item, message=dataclasses.replace(item.message, sender=message_sender)
    )
    outcomes = await write_guarded(connection, [item])
    assert outcomes[0].opted_out == (frozenset({STOPPED}) if blocks else frozenset())
    assert outcomes[0].stored is not blocks
