"""Protection counters: the guarded write that takes velocity and spend counters with the
messages they allow, spend given back, and reads for operators (policies are in
``protection_policies``).

The guarded write first tries one statement: the batch's messages, their monitored
recipients, and every counter taking the batch's total (``domain.counters.batch_totals``),
each total checked against its counter's current level under the row lock that the upsert
takes. One total that would not fit (or would cross a warning threshold) aborts the whole
statement, and the batch takes the precise path: one transaction that locks its counters, lets
``domain.counters.decide`` go through the messages in order, writes the counters back and
stores the messages that passed. Either way, row locks serialise concurrent batches from every
process on the same counters, so a cap is never overshot. A batch with no counters to take and
nothing to record is the plain one-statement insert.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import asyncpg

from smsgateway.domain.callback_targets import target_host
from smsgateway.domain.counters import (
    CounterState,
    Draw,
    Ledger,
    Verdict,
    batch_totals,
    decide,
)
from smsgateway.domain.destination_policy import PolicyHit
from smsgateway.store.messages import (
    ACCEPTED_PARAMETERS,
    NOTHING_OPTED_OUT,
    NewMessage,
    OptOutsFoundError,
    SpendCharge,
    accepted_arguments,
    insert_accepted,
    insert_accepted_statement,
    raise_if_opted_out,
)

if TYPE_CHECKING:
    from smsgateway.store.pool import Connection

SPEND_EVENT_TYPE = "spend.threshold_reached"


@dataclass(frozen=True)
class GuardedMessage:
    """A message with the counters it must take and the monitored recipients to record;
    ``callback_url`` is where a ``spend.threshold_reached`` event for it goes, if anywhere."""

    message: NewMessage
    draws: tuple[Draw, ...] = ()
    monitored: tuple[PolicyHit, ...] = ()
    callback_url: str | None = None

    @property
    def spend_charge(self) -> SpendCharge | None:
        """The spend draws: what the message gives back if it ends without costing anything."""
        charge = {draw.key: str(draw.amount) for draw in self.draws if not draw.is_velocity}
        return charge or None


@dataclass(frozen=True)
class GuardOutcome:
    """``verdict`` None: nothing to check, stored. Otherwise stored exactly when it passed.
    ``opted_out``: recipients the write found opted out; the message was not stored, and is
    to be written again with them marked (and its draws without them)."""

    verdict: Verdict | None = None
    opted_out: frozenset[str] = frozenset()

    @property
    def stored(self) -> bool:
        return not self.opted_out and (self.verdict is None or self.verdict.passed)


class GuardRefusedError(Exception):
    """Raised inside an idempotent accept's transaction to roll it back: the counters refused."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__("refused by the protection counters")
        self.verdict = verdict


# Locks (and creates at zero) every counter in key order, so two batches wanting the same
# counters queue rather than deadlock; the no-op update is what takes the row lock and returns
# the row in one round trip. clock_timestamp(): every process drains buckets on one clock.
_LOCK_COUNTERS = """
INSERT INTO protection_counter AS c (key, amount, updated_at)
SELECT k, 0, clock_timestamp() FROM unnest($1::text[]) AS k ORDER BY k
ON CONFLICT (key) DO UPDATE SET key = EXCLUDED.key
RETURNING c.key, c.amount, c.updated_at, clock_timestamp() AS now
"""

_WRITE_COUNTERS = """
UPDATE protection_counter AS c SET amount = u.amount, updated_at = u.updated_at
FROM unnest($1::text[], $2::numeric[], $3::timestamptz[]) AS u(key, amount, updated_at)
WHERE c.key = u.key
"""

# The whole batch in one statement: the messages (insert_accepted's CTEs), the monitored
# recipients, and each counter taking the batch's total. A counter that cannot take it
# without a closer look (past its capacity, or crossing its warning threshold, which queues a
# callback) gets a NULL amount; the column's NOT NULL aborts the statement, so nothing of the
# batch is written, and the caller takes the precise path. The counters' CTE is read by
# nothing, so Postgres runs it after the inserts: the hot rows stay locked only until commit.
# A velocity counter drains at ``drain`` per second since it was last written.
# Postgres checks NOT NULL on the row proposed for insertion before it finds the conflict, so
# the proposed amount of a counter that already exists is not NULL for crossing a threshold
# from zero (the update below judges it); past its capacity it cannot fit in any case. (A
# subquery per key, not a join: the planner would scan the whole table, one row per prefix.)
_P = ACCEPTED_PARAMETERS
_WRITE_WHOLE_BATCH = insert_accepted_statement(
    f"""
wanted AS (
    SELECT * FROM unnest(${_P + 1}::text[], ${_P + 2}::numeric[], ${_P + 3}::numeric[],
                         ${_P + 4}::float8[], ${_P + 5}::numeric[])
        AS w(key, amount, capacity, drain, warn_at)
), counter_taken AS (
    INSERT INTO protection_counter AS c (key, amount, updated_at)
    SELECT w.key,
           CASE WHEN w.amount <= w.capacity
                     AND ((SELECT true FROM protection_counter AS e WHERE e.key = w.key)
                          OR w.warn_at IS NULL OR w.warn_at <= 0 OR w.amount < w.warn_at)
                THEN w.amount END,
           clock_timestamp()
    FROM wanted AS w
    WHERE {NOTHING_OPTED_OUT}
    ORDER BY w.key
    ON CONFLICT (key) DO UPDATE SET
        amount = (
            SELECT CASE WHEN l.level + w.amount <= w.capacity
                             AND (w.warn_at IS NULL OR l.level >= w.warn_at
                                  OR l.level + w.amount < w.warn_at)
                        THEN l.level + w.amount END
            FROM wanted AS w,
                 LATERAL (SELECT greatest(0, c.amount - (w.drain * greatest(0, extract(
                     epoch FROM clock_timestamp() - c.updated_at))::float8)::numeric))
                     AS l(level)
            WHERE w.key = c.key),
        updated_at = clock_timestamp()
), monitored AS (
    INSERT INTO protection_event
        (message_id, tenant, recipient, region, number_type, code, occurred_at)
    SELECT * FROM unnest(${_P + 6}::uuid[], ${_P + 7}::text[], ${_P + 8}::text[],
                         ${_P + 9}::text[], ${_P + 10}::text[], ${_P + 11}::text[],
                         ${_P + 12}::timestamptz[])
    WHERE {NOTHING_OPTED_OUT}
),"""
)

_RECORD_MONITORED = """
INSERT INTO protection_event
    (message_id, tenant, recipient, region, number_type, code, occurred_at)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::timestamptz[])
"""

_ENQUEUE_SPEND_EVENT = """
INSERT INTO callback_event (id, message_id, stream, sequence, url, host, payload)
SELECT $1, $2, $2::uuid::text,
       coalesce((SELECT max(sequence) FROM callback_event WHERE stream = $2::uuid::text), 0) + 1,
       $3, $4, $5::text::jsonb || jsonb_build_object('id', $1::uuid, 'created_at', now())
"""


async def write_guarded(
    connection: Connection, items: Sequence[GuardedMessage]
) -> list[GuardOutcome]:
    """Stores the messages the counters allow, taking what each needs, in one transaction.
    A message with recipients found opted out is not stored (``GuardOutcome.opted_out``);
    the others are written again without it."""
    try:
        return await _write_guarded(connection, items)
    except OptOutsFoundError as exc:
        found = exc.found
    clean = [item for item in items if item.message.id not in found]
    written = iter(await write_guarded(connection, clean) if clean else [])
    return [
        GuardOutcome(opted_out=found[item.message.id])
        if item.message.id in found
        else next(written)
        for item in items
    ]


async def _write_guarded(
    connection: Connection, items: Sequence[GuardedMessage]
) -> list[GuardOutcome]:
    if not any(item.draws or item.monitored for item in items):
        await insert_accepted(connection, [item.message for item in items])
        return [GuardOutcome() for _ in items]
    totals = batch_totals(item.draws for item in items)
    if totals is not None and await _write_whole_batch(connection, items, totals):
        passed = Verdict(passed=True)
        return [GuardOutcome(passed if item.draws else None) for item in items]
    async with connection.transaction():
        return await _write_in_transaction(connection, items)


async def _write_whole_batch(
    connection: Connection, items: Sequence[GuardedMessage], totals: Sequence[Draw]
) -> bool:
    """The one-statement write of a whole batch; False (and nothing written) when a counter
    cannot take its total without a closer look. Raises ``OptOutsFoundError`` (nothing
    written) when a recipient opted out."""
    arguments = [
        *accepted_arguments(
            [item.message for item in items], [item.spend_charge for item in items]
        ),
        [draw.key for draw in totals],
        [draw.amount for draw in totals],
        [draw.capacity for draw in totals],
        [draw.drain_per_second for draw in totals],
        [draw.warn_at for draw in totals],
        *_monitored_columns(items),
    ]
    try:
        if connection.is_in_transaction():
            # A savepoint, so that the abort ends only this statement, not the caller's work.
            async with connection.transaction():
                found = await connection.fetch(_WRITE_WHOLE_BATCH, *arguments)
        else:
            found = await connection.fetch(_WRITE_WHOLE_BATCH, *arguments)
    except asyncpg.NotNullViolationError as exc:
        if exc.table_name != "protection_counter":
            raise
        return False
    raise_if_opted_out(found)
    return True


async def write_guarded_one(
    connection: Connection, messages: list[NewMessage], item: GuardedMessage
) -> None:
    """The guarded write of one message inside a transaction the caller holds (an idempotent
    accept); raises ``GuardRefusedError`` when the counters refuse it and
    ``OptOutsFoundError`` when a recipient opted out."""
    assert [item.message] == messages, "the idempotent write stores exactly the guarded message"
    verdict = (await _write_in_transaction(connection, [item]))[0].verdict
    if verdict is not None and not verdict.passed:
        raise GuardRefusedError(verdict)


async def _write_in_transaction(
    connection: Connection, items: Sequence[GuardedMessage]
) -> list[GuardOutcome]:
    keys = sorted({draw.key for item in items for draw in item.draws})
    outcomes: list[GuardOutcome] = []
    passed: list[GuardedMessage] = []
    if keys:
        rows = await connection.fetch(_LOCK_COUNTERS, keys)
        now: datetime = rows[0]["now"]
        ledger = Ledger(
            now, {row["key"]: CounterState(row["amount"], row["updated_at"]) for row in rows}
        )
        for item in items:
            verdict = decide(ledger, item.draws) if item.draws else None
            outcomes.append(GuardOutcome(verdict))
            if verdict is None or verdict.passed:
                passed.append(item)
        if ledger.touched:
            touched = sorted(ledger.touched)
            await connection.execute(
                _WRITE_COUNTERS,
                touched,
                [ledger.states[key].amount for key in touched],
                [ledger.states[key].updated_at for key in touched],
            )
    else:
        outcomes = [GuardOutcome() for _ in items]
        passed = list(items)
    if passed:
        await insert_accepted(
            connection,
            [item.message for item in passed],
            [item.spend_charge for item in passed],
        )
        await _record_monitored(connection, passed)
        for item, outcome in zip(items, outcomes, strict=True):
            if outcome.verdict is not None and outcome.verdict.warnings:
                await _enqueue_spend_events(connection, item, outcome.verdict.warnings)
    return outcomes


async def _record_monitored(connection: Connection, items: Sequence[GuardedMessage]) -> None:
    columns = _monitored_columns(items)
    if columns[0]:
        await connection.execute(_RECORD_MONITORED, *columns)


def _monitored_columns(items: Sequence[GuardedMessage]) -> tuple[list[Any], ...]:
    columns: tuple[list[Any], ...] = ([], [], [], [], [], [], [])
    for item in items:
        for hit in item.monitored:
            row = (
                item.message.id,
                item.message.tenant,
                hit.e164,
                hit.region,
                str(hit.number_type),
                str(hit.code),
                item.message.created_at,
            )
            for column, value in zip(columns, row, strict=True):
                column.append(value)
    return columns


# Reads the charge as it was and clears it in one statement (both see the same snapshot).
_TAKE_CHARGE = """
WITH cleared AS (
    UPDATE sms_log SET spend_charge = NULL WHERE id = $1 AND spend_charge IS NOT NULL
)
SELECT charge.key, charge.value::numeric AS amount
FROM sms_log AS m, jsonb_each_text(m.spend_charge) AS charge
WHERE m.id = $1
ORDER BY charge.key
"""


async def release_charge(connection: Connection, message_id: uuid.UUID) -> None:
    """Gives back what the message took from its spend counters, once (its charge is cleared):
    for a message that ended without costing anything. Run inside the caller's transaction
    that ends the message, after it has locked the message's row."""
    await _give_back(connection, await connection.fetch(_TAKE_CHARGE, message_id))


# The share of the charge that ``$2`` recipients just left out of the batch took: the charge
# was taken for the recipients then pending, each the same segments, so it is split evenly
# among them (those still pending after the marking, plus the $2 marked). What is given back
# leaves the charge, so a retry, which marks nobody again, gives nothing twice; the last
# recipients left out take the remainder, so the whole charge comes back to the last digit.
_TAKE_SHARE = """
WITH charged AS (
    SELECT $2::int + (SELECT count(*) FROM sms_recipient
                      WHERE message_id = $1 AND status IN ('queued', 'scheduled'))::int AS n
), old AS (
    SELECT charge.key, charge.value::numeric AS amount
    FROM sms_log AS m, jsonb_each_text(m.spend_charge) AS charge
    WHERE m.id = $1
), given AS (
    SELECT old.key,
           CASE WHEN charged.n <= $2 THEN old.amount ELSE old.amount * $2 / charged.n END
               AS amount,
           charged.n <= $2 AS everything
    FROM old, charged
), kept AS (
    UPDATE sms_log SET spend_charge = (
        SELECT CASE WHEN bool_and(g.everything) THEN NULL
                    ELSE jsonb_object_agg(o.key, (o.amount - g.amount)::text) END
        FROM old AS o JOIN given AS g USING (key))
    WHERE id = $1 AND spend_charge IS NOT NULL
)
SELECT key, amount FROM given ORDER BY key
"""


async def release_share(connection: Connection, message_id: uuid.UUID, left_out: int) -> None:
    """Gives back the share of the message's spend charge that ``left_out`` recipients, just
    moved from pending to a status that is never sent (opted out at dispatch), took; exactly
    once (the charge keeps only the rest). Run in the transaction that moved them, after it
    has locked the message's row.

    Segments come back exactly (every recipient took the message's segments); money in
    proportion (exact when the recipients share a price, else the message's average price)."""
    if left_out > 0:
        await _give_back(connection, await connection.fetch(_TAKE_SHARE, message_id, left_out))


async def _give_back(connection: Connection, charge: Sequence[asyncpg.Record]) -> None:
    if not charge:
        return
    keys = [row["key"] for row in charge]
    # In key order, as accepts lock them: a cancel and a batch of accepts never deadlock.
    await connection.execute(
        "SELECT 1 FROM protection_counter WHERE key = ANY($1::text[]) ORDER BY key FOR UPDATE",
        keys,
    )
    await connection.execute(
        "UPDATE protection_counter AS c SET amount = greatest(0, c.amount - u.amount)"
        " FROM unnest($1::text[], $2::numeric[]) AS u(key, amount) WHERE c.key = u.key",
        keys,
        [row["amount"] for row in charge],
    )


async def _enqueue_spend_events(
    connection: Connection, item: GuardedMessage, warnings: Sequence[Draw]
) -> None:
    if item.callback_url is None:
        return
    for draw in warnings:
        payload = {
            "type": SPEND_EVENT_TYPE,
            "message_id": str(item.message.id),
            "client_reference": item.message.client_reference,
            "tenant": item.message.tenant,
            "cap": draw.label,
            "limit": str(draw.capacity),
            "threshold": str(draw.warn_at),
        }
        await connection.execute(
            _ENQUEUE_SPEND_EVENT,
            uuid.uuid4(),
            item.message.id,
            item.callback_url,
            target_host(item.callback_url),
            json.dumps(payload),
        )


async def read_counters(connection: Connection, keys: Sequence[str]) -> Ledger:
    """The counters ``keys`` as they stand, unlocked, to decide on a copy (a preview): what
    ``decide`` takes from the ledger returned is never written."""
    # The left join returns a row (with the server's time) even when no counter exists yet.
    rows = await connection.fetch(
        "SELECT clock_timestamp() AS now, c.key, c.amount, c.updated_at"
        " FROM (VALUES (1)) AS one (x)"
        " LEFT JOIN protection_counter AS c ON c.key = ANY($1::text[])",
        list(keys),
    )
    return Ledger(
        rows[0]["now"],
        {
            row["key"]: CounterState(row["amount"], row["updated_at"])
            for row in rows
            if row["key"] is not None
        },
    )


COUNTER_IDLE = timedelta(days=62)
"""A counter untouched this long is empty: every spend period has ended (a month is at most
31 days) and every velocity window (at most 31 days) has drained."""

_DELETE_IDLE_COUNTERS = """
DELETE FROM protection_counter
WHERE key IN (SELECT key FROM protection_counter
              WHERE updated_at < now() - $1::interval
              LIMIT $2
              FOR UPDATE SKIP LOCKED)
"""


async def delete_idle_counters(connection: Connection, *, limit: int) -> int:
    """Deletes up to ``limit`` counters idle for ``COUNTER_IDLE`` (the retention sweep's step):
    past days and months, and velocity buckets of prefixes nobody sends to any more."""
    status = await connection.execute(_DELETE_IDLE_COUNTERS, COUNTER_IDLE, limit)
    return int(status.split()[-1])


@dataclass(frozen=True)
class CounterRow:
    key: str
    amount: Decimal
    updated_at: datetime


@dataclass(frozen=True)
class MonitoredRecord:
    message_id: uuid.UUID
    recipient: str
    region: str
    number_type: str
    code: str
    occurred_at: datetime


async def counters(connection: Connection, prefix: str) -> list[CounterRow]:
    """Counters whose key starts with ``prefix`` (for operators and tests)."""
    rows = await connection.fetch(
        "SELECT key, amount, updated_at FROM protection_counter WHERE starts_with(key, $1)"
        " ORDER BY key",
        prefix,
    )
    return [CounterRow(row["key"], row["amount"], row["updated_at"]) for row in rows]


async def monitored_records(
    connection: Connection, tenant: str, limit: int = 100
) -> list[MonitoredRecord]:
    rows = await connection.fetch(
        "SELECT message_id, recipient, region, number_type, code, occurred_at"
        " FROM protection_event WHERE tenant = $1 ORDER BY id DESC LIMIT $2",
        tenant,
        limit,
    )
    return [
        MonitoredRecord(
            row["message_id"],
            row["recipient"],
            row["region"],
            row["number_type"],
            row["code"],
            row["occurred_at"],
        )
        for row in rows
    ]
