"""The guarded write (store.protection): a batch that fits takes its counters in the one
statement that stores it; one that does not goes through ``decide`` message by message."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from smsgateway.domain.counters import Draw, fits_without_warning
from smsgateway.store.cancellation import start_cancel
from smsgateway.store.messages import NewMessage
from smsgateway.store.protection import GuardedMessage, _write_whole_batch, write_guarded
from tests.integration.dispatch.accepted import open_pool

pytestmark = pytest.mark.asyncio

CAP = Decimal(10)


class CountingConnection:
    """The real connection, counting the statements sent and transactions opened."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection
        self.statements = 0
        self.transactions = 0

    async def execute(self, *args: Any) -> str:
        self.statements += 1
        return await self._connection.execute(*args)

    async def fetch(self, *args: Any) -> list[asyncpg.Record]:
        self.statements += 1
        return await self._connection.fetch(*args)

    def transaction(self) -> Any:
        self.transactions += 1
        return self._connection.transaction()

    def is_in_transaction(self) -> bool:
        return self._connection.is_in_transaction()


def guarded(segments: int, *, warn_at: Decimal | None = None) -> GuardedMessage:
    now = datetime.now(UTC)
    message = NewMessage(
        id=uuid.uuid4(),
        tenant="capped",
        api_key_id=None,
        sender=None,
        body="x",
        encoding="GSM-7",
        segment_count=segments,
        character_count=1,
        recipients=("+46701234567",),
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
    draws = (
        Draw("spend:capped:day", Decimal(segments), CAP, warn_at=warn_at, label="day_segments"),
        Draw("velocity:capped:prefix:+4670123", Decimal(1), Decimal(100), 0.01, (0,)),
    )
    return GuardedMessage(message, draws, callback_url="https://caller.example/hook")


async def stored(connection: asyncpg.Connection) -> tuple[int, Decimal | None]:
    segments = await connection.fetchval(
        "SELECT coalesce(sum(segment_count), 0) FROM sms_log WHERE tenant = 'capped'"
    )
    counted = await connection.fetchval(
        "SELECT amount FROM protection_counter WHERE key = 'spend:capped:day'"
    )
    return segments, counted


async def test_a_batch_that_fits_takes_its_counters_in_the_statement_that_stores_it(
    connection: asyncpg.Connection,
) -> None:
    counting = CountingConnection(connection)
    outcomes = await write_guarded(counting, [guarded(3), guarded(4)])  # type: ignore[arg-type]
    assert [outcome.stored for outcome in outcomes] == [True, True]
    assert (counting.statements, counting.transactions) == (1, 0)
    assert await stored(connection) == (7, Decimal(7))
    velocity = await connection.fetchval(
        "SELECT amount FROM protection_counter WHERE key LIKE 'velocity:%'"
    )
    assert 1.99 < velocity <= 2, "two recipients, drained a little since the first"


async def test_a_batch_past_a_cap_stores_the_messages_that_fit_in_their_order(
    connection: asyncpg.Connection,
) -> None:
    await write_guarded(connection, [guarded(4)])
    counting = CountingConnection(connection)
    batch = [guarded(3), guarded(4), guarded(2), guarded(1)]
    outcomes = await write_guarded(counting, batch)  # type: ignore[arg-type]
    assert [outcome.stored for outcome in outcomes] == [True, False, True, True]
    assert counting.transactions == 1, "the whole-batch statement gave way to decide"
    assert await stored(connection) == (10, CAP)
    refused = outcomes[1].verdict
    assert refused is not None
    assert refused.spend_refused is not None


async def test_crossing_the_warning_threshold_queues_the_spend_event(
    connection: asyncpg.Connection,
) -> None:
    outcomes = await write_guarded(
        connection, [guarded(2, warn_at=Decimal(5)), guarded(4, warn_at=Decimal(5))]
    )
    assert [bool(o.verdict and o.verdict.warnings) for o in outcomes] == [False, True]
    events = await connection.fetchval(
        "SELECT count(*) FROM callback_event WHERE payload->>'type' = 'spend.threshold_reached'"
    )
    assert events == 1
    assert await stored(connection) == (6, Decimal(6))


async def test_the_aborted_statement_leaves_a_callers_transaction_usable(
    connection: asyncpg.Connection,
) -> None:
    await write_guarded(connection, [guarded(9)])
    transaction = connection.transaction()
    await transaction.start()
    outcomes = await write_guarded(connection, [guarded(2), guarded(1)])
    await transaction.commit()
    assert [outcome.stored for outcome in outcomes] == [False, True]
    assert await stored(connection) == (10, CAP)


@pytest.mark.parametrize("warn_at", [None, 0, 2, 4])
async def test_the_statement_takes_a_total_exactly_when_the_domain_says_it_fits(
    connection: asyncpg.Connection, warn_at: int | None
) -> None:
    """The SQL twin of ``fits_without_warning``, on every small level, amount and capacity."""
    for level, amount, capacity in itertools.product(range(4), range(1, 4), range(6)):
        key = f"spend:twin:{warn_at}:{level}:{amount}:{capacity}"
        await connection.execute(
            "INSERT INTO protection_counter (key, amount) VALUES ($1, $2)", key, level
        )
        draw = Draw(
            key,
            Decimal(amount),
            Decimal(capacity),
            warn_at=None if warn_at is None else Decimal(warn_at),
            label="day_segments",
        )
        item = GuardedMessage(guarded(1).message, (draw,))
        took = await _write_whole_batch(connection, [item], [draw])
        assert took == fits_without_warning(Decimal(level), draw), (level, amount, capacity)
        stored = await connection.fetchval(
            "SELECT amount FROM protection_counter WHERE key = $1", key
        )
        assert stored == (level + amount if took else level)


async def test_cancels_racing_accepts_leave_the_counter_equal_to_what_is_charged(
    database_url: str,
) -> None:
    """Accept batches (locking counters at the end of their statement, or in key order on the
    precise path) and cancels (message row, then counters in key order) on two connections:
    no deadlock, and the day's counter ends equal to the charges still held."""
    pool = await open_pool(database_url, max_size=2)  # its connections have our JSON codecs
    accepting = await pool.acquire()
    cancelling = await pool.acquire()
    try:
        queue: asyncio.Queue[uuid.UUID | None] = asyncio.Queue()

        async def accept() -> None:
            for round_ in range(30):
                # Now and then a batch past the cap: the precise path, locking in key order.
                batch = [guarded(1 if round_ % 5 else 4) for _ in range(3)]
                outcomes = await write_guarded(accepting, batch)
                for item, outcome in zip(batch, outcomes, strict=True):
                    if outcome.stored:
                        await queue.put(item.message.id)
            await queue.put(None)

        async def cancel() -> None:
            while (message_id := await queue.get()) is not None:
                await start_cancel(
                    cancelling, "capped", message_id, lease_seconds=5, claimed_by="test"
                )

        await asyncio.wait_for(asyncio.gather(accept(), cancel()), timeout=60)
        counted = await accepting.fetchval(
            "SELECT amount FROM protection_counter WHERE key = 'spend:capped:day'"
        )
        charged = await accepting.fetchval(
            "SELECT coalesce(sum((spend_charge->>'spend:capped:day')::numeric), 0)"
            " FROM sms_log WHERE tenant = 'capped'"
        )
        cancelled = await accepting.fetchval(
            "SELECT count(*) FROM sms_log WHERE tenant = 'capped' AND status = 'cancelled'"
        )
    finally:
        await pool.release(accepting)
        await pool.release(cancelling)
        await pool.close()
    assert cancelled > 0
    assert counted == charged
