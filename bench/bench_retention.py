"""The personal-data retention sweep on a few million synthetic messages.

Usage: .venv/bin/python bench/bench_retention.py [--messages N] [--tenants T] [--days D]
       [--redact-after R] [--delete-after X] [--batch-size B] [--accept-rate A]
       [--accept-seconds S] [--pause-ms P] [--database-url URL] [--keep]
       (default: an embedded Postgres; on a given server the scratch database is dropped after,
       unless --keep)

In a scratch database, ``generate_series`` writes N messages (default 3,000,000) spread evenly
over the last D days (default 120) and T tenants, in time order as traffic would: each with
one recipient, one delivery-report event holding the number, a body with a code; 1 % failed,
0.5 % stuck ``submitted`` (not final: the sweep must skip them), the rest delivered. Then the
sweep's own statements (``store.personal_data``) run as the retention job runs them, tenant by
tenant in batches of B rows: first deletion (older than X days, default 90), then redaction
(older than R days, default 30). Printed: rows/s for each, the time per batch (p50, p90, max),
a second sweep's cost when nothing is left to do, table sizes, and whether status updates
are still HOT afterwards.

With ``--accept-rate`` (default 200/s; 0 skips it), a gateway (`smsgateway serve`, dispatcher
off) takes single-recipient accepts at that offered rate, first alone, then while the sweep
runs: accepts/s and latency p50/p99 of both, so the sweep's cost to senders shows. ``--pause-ms``
(default 0) is the job's SMSGW_RETENTION_PAUSE_MS: the pause after each statement that changed
rows, as ``services.personal_data`` takes it; run with 0 and with the default (100) to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_accept import swedish_mobile
from harness import (
    benchmark_database,
    create_api_key,
    free_port,
    gateway_environment,
    migrate,
    write_history,
)
from loadgen import LoadResult, post_request, run_load, wait_until_serving
from smsgateway.domain.retention import RetentionWindow
from smsgateway.services.retention import RetentionPolicy, RetentionSweeper
from smsgateway.store import personal_data
from smsgateway.store.pool import create_pool

if TYPE_CHECKING:
    from smsgateway.store.pool import Connection

Statement = Callable[[str, timedelta, int], Awaitable[int]]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=3_000_000)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--redact-after", type=int, default=30)
    parser.add_argument("--delete-after", type=int, default=90)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--accept-rate", type=float, default=200.0)
    parser.add_argument("--accept-seconds", type=float, default=20.0)
    parser.add_argument("--pause-ms", type=float, default=0.0)
    parser.add_argument("--database-url")
    parser.add_argument("--keep", action="store_true", help="leave the scratch database")
    args = parser.parse_args()
    with benchmark_database(args.database_url) as dsn:
        try:
            asyncio.run(run(args, dsn))
        finally:
            if args.database_url is not None and not args.keep:
                asyncio.run(drop_database(args.database_url, dsn))


async def drop_database(server_dsn: str, dsn: str) -> None:
    """Drops the scratch database (a few GB at the default size) made on ``server_dsn``."""
    name = dsn.partition("?")[0].rsplit("/", 1)[1]
    connection = await asyncpg.connect(server_dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def run(args: argparse.Namespace, dsn: str) -> None:
    environment = gateway_environment(dsn, free_port(), 2)
    migrate(environment)
    connection = await asyncpg.connect(dsn)
    try:
        await generate(connection, args)
    finally:
        await connection.close()

    pool = await create_pool(dsn, min_size=1, max_size=4, command_timeout=600, connect_timeout=10)
    try:
        gateway = start_gateway(environment) if args.accept_rate > 0 else None
        try:
            during = None
            if gateway is not None:
                port = int(environment["PORT"])
                key = create_api_key(environment, "bench", "--tenant", "tenant0")
                alone = await accepts(port, key, args)
                print(f"accepts alone (offered {args.accept_rate:,.0f}/s): {alone.summary()}")

                def during() -> asyncio.Task[LoadResult]:
                    return asyncio.create_task(accepts(port, key, args))

            await sweep(pool, args, during)
        finally:
            if gateway is not None:
                gateway.terminate()
                gateway.wait(timeout=30)
        await after_sweep(pool, args)
    finally:
        await pool.close()


async def generate(connection: asyncpg.Connection, args: argparse.Namespace) -> None:
    print(
        f"generating {args.messages:,} messages over {args.days} days in {args.tenants} tenants"
        " (each: 1 recipient, 1 report event)"
    )
    for name, rows, seconds in await write_history(
        connection, args.messages, tenants=args.tenants, days=args.days
    ):
        print(f"  {name}: {rows} in {seconds:.1f} s")
    await print_sizes(connection, "before the sweep")


async def sweep(
    pool: asyncpg.Pool,
    args: argparse.Namespace,
    during: Callable[[], asyncio.Task[LoadResult]] | None,
) -> None:
    """The retention job's personal-data steps for messages, statement by statement; the
    accept load ``during`` starts with each phase, for ``--accept-seconds``."""
    async with pool.acquire() as connection:
        tenants = await personal_data.tenants_with_data(connection)

        async def delete(tenant: str, age: timedelta, limit: int) -> int:
            return await personal_data.delete_messages(
                connection, tenant, older_than=age, limit=limit
            )

        async def redact(tenant: str, age: timedelta, limit: int) -> int:
            return await personal_data.redact_messages(
                connection, tenant, older_than=age, limit=limit
            )

        for name, statement, days in (
            ("deletion", delete, args.delete_after),
            ("redaction", redact, args.redact_after),
        ):
            load = None if during is None else during()
            seconds = await timed_step(
                name, statement, tenants, timedelta(days), args.batch_size, args.pause_ms / 1000
            )
            if load is not None:
                result = await load
                print(
                    f"  accepts during the first {args.accept_seconds:.0f} s of the {name}"
                    f" (which took {seconds:.0f} s): {result.summary()}"
                )


async def timed_step(
    name: str,
    statement: Statement,
    tenants: list[str],
    age: timedelta,
    batch_size: int,
    pause_seconds: float,
) -> float:
    batches: list[float] = []
    rows = 0
    started = time.perf_counter()
    for tenant in tenants:
        while True:
            began = time.perf_counter()
            changed = await statement(tenant, age, batch_size)
            batches.append(time.perf_counter() - began)
            rows += changed
            # The retention job's throttle (services.personal_data._until_short).
            if changed and pause_seconds > 0:
                await asyncio.sleep(pause_seconds)
            if changed < batch_size:
                break
    seconds = time.perf_counter() - started
    ordered = sorted(batches)
    print(
        f"{name} (pause {pause_seconds * 1000:.0f} ms):"
        f" {rows:,} messages in {seconds:.1f} s = {rows / seconds:,.0f} messages/s;"
        f" {len(batches)} statements of <= {batch_size} rows:"
        f" p50 {statistics.median(ordered) * 1000:.0f} ms,"
        f" p90 {ordered[int(0.9 * (len(ordered) - 1))] * 1000:.0f} ms,"
        f" max {ordered[-1] * 1000:.0f} ms"
    )
    return seconds


async def after_sweep(pool: asyncpg.Pool, args: argparse.Namespace) -> None:
    window = RetentionWindow(args.redact_after, args.delete_after)
    policy = RetentionPolicy(
        unmatched_report_max_age=timedelta(days=30),
        webhook_nonce_max_age=timedelta(minutes=10),
        batch_size=args.batch_size,
        personal_data=window,
    )
    started = time.perf_counter()
    result = await RetentionSweeper(pool, policy).sweep()
    print(
        f"a whole sweep with nothing left to do: {(time.perf_counter() - started) * 1000:.0f} ms"
        f" (deleted {result.personal_data_deleted.total},"
        f" redacted {result.personal_data_redacted.total}, failed steps {result.failed_steps})"
    )
    async with pool.acquire() as connection:
        left = await connection.fetchrow(
            """
            SELECT count(*) FILTER (WHERE created_at < now() - $1::interval) AS too_old,
                   count(*) FILTER (WHERE created_at < now() - $2::interval
                                    AND redacted_at IS NULL) AS unredacted_old,
                   count(*) FILTER (WHERE redacted_at IS NOT NULL) AS redacted,
                   count(*) AS total
            FROM sms_log
            """,
            timedelta(args.delete_after),
            timedelta(args.redact_after),
        )
        assert left is not None
        print(
            f"left: {left['total']:,} messages, {left['redacted']:,} redacted;"
            f" older than the windows but kept (not final): {left['too_old']:,} past deletion,"
            f" {left['unredacted_old']:,} unredacted past redaction"
        )
        await print_sizes(connection, "after the sweep (before any vacuum)")
        await hot_check(connection)


async def hot_check(connection: Connection) -> None:
    """Status updates as report ingestion makes them: still heap-only (HOT)?"""
    async with connection.transaction():
        updated = await connection.execute(
            """
            UPDATE sms_log SET status = 'delivered', updated_at = now()
            WHERE id IN (SELECT id FROM sms_log WHERE status = 'submitted'
                         AND created_at > now() - interval '20 days' LIMIT 2000)
            """
        )
        hot = await connection.fetchval(
            "SELECT pg_stat_get_xact_tuples_hot_updated('sms_log'::regclass)"
        )
        print(f"status updates after the sweep: {hot} of {updated.split()[-1]} were HOT")


async def print_sizes(connection: Connection, when: str) -> None:
    rows = await connection.fetch(
        """
        SELECT relname, pg_total_relation_size(oid) AS total, pg_indexes_size(oid) AS indexes
        FROM pg_class WHERE relname IN ('sms_log', 'sms_recipient', 'sms_event')
        ORDER BY relname
        """
    )
    sizes = ", ".join(
        f"{row['relname']} {row['total'] / 2**20:,.0f} MiB"
        f" ({row['indexes'] / 2**20:,.0f} MiB of it indexes)"
        for row in rows
    )
    print(f"sizes {when}: {sizes}")


def start_gateway(environment: dict[str, str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "smsgateway", "serve"],
        env=environment,
        stdout=subprocess.DEVNULL,
    )
    wait_until_serving(int(environment["PORT"]), int(environment["SMSGW_WORKERS"]))
    return process


async def accepts(port: int, key: str, args: argparse.Namespace) -> LoadResult:
    """Single-recipient accepts offered at ``--accept-rate`` for ``--accept-seconds``."""
    rng = random.Random(7)
    headers = {"X-API-Key": key}

    def single(_: int) -> bytes:
        body = {"to": swedish_mobile(rng), "body": "Your code is 123456"}
        return post_request("127.0.0.1", port, "/v1/messages", body, headers)

    return await run_load(
        "127.0.0.1",
        port,
        single,
        concurrency=16,
        duration=args.accept_seconds,
        rate=args.accept_rate,
    )


if __name__ == "__main__":
    main()
