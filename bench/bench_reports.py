"""Delivery-report ingestion: per-recipient reports stored and applied per second.

Usage: .venv/bin/python bench/bench_reports.py [--messages N] [--recipients R]
       [--concurrency C] [--workers W] [--database-url URL]

Stores N submitted messages of R recipients each (with Sinch batch ids), starts the gateway
(`smsgateway serve`, dispatcher off, webhook checks off), then POSTs one final
`recipient_delivery_report_sms` per recipient to /webhooks/sinch (the report lane) from a
keep-alive load generator, as Sinch would, and prints reports/s and latency. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_accept import cpu_seconds
from harness import benchmark_database, free_port, gateway_environment, migrate
from loadgen import post_request, run_load, wait_until_serving

REPO = Path(__file__).resolve().parents[1]


async def store_submitted(dsn: str, messages: int, recipients: int) -> list[tuple[str, str]]:
    """Inserts submitted messages; returns (batch id, recipient) for every recipient."""
    connection = await asyncpg.connect(dsn)
    pairs: list[tuple[str, str]] = []
    try:
        now = datetime.now(UTC)
        ids = [uuid.uuid4() for _ in range(messages)]
        batches = [f"BENCH{n:021d}" for n in range(messages)]
        await connection.execute(
            "INSERT INTO sms_log (id, tenant, body, encoding, segment_count, character_count,"
            " recipient_count, status, delivery_report, sinch_batch_id, created_at, updated_at,"
            " submitted_at)"
            " SELECT id, 'bench', 'hi', 'GSM-7', 1, 2, $3, 'submitted', 'per_recipient', b,"
            " $4, $4, $4 FROM unnest($1::uuid[], $2::text[]) AS t(id, b)",
            ids,
            batches,
            recipients,
            now,
        )
        rows = []
        for message_id, batch in zip(ids, batches, strict=True):
            for position in range(recipients):
                msisdn = f"+4670{len(pairs):07d}"
                rows.append((message_id, position, msisdn, "submitted", now))
                pairs.append((batch, msisdn))
        await connection.copy_records_to_table(
            "sms_recipient",
            records=rows,
            columns=["message_id", "position", "msisdn", "status", "updated_at"],
        )
    finally:
        await connection.close()
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--recipients", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with benchmark_database(args.database_url) as dsn:
        run(args, dsn)


def run(args: argparse.Namespace, dsn: str) -> None:
    port = free_port()
    environment = gateway_environment(dsn, port, args.workers)
    migrate(environment)
    pairs = asyncio.run(store_submitted(dsn, args.messages, args.recipients))
    gateway = subprocess.Popen(
        [sys.executable, "-m", "smsgateway", "serve"],
        env=environment,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_until_serving(port, args.workers)
        asyncio.run(measure(port, pairs, args, gateway.pid))
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)


async def measure(
    port: int, pairs: list[tuple[str, str]], args: argparse.Namespace, gateway_pid: int
) -> None:
    at = datetime.now(UTC).isoformat().replace("+00:00", "Z")

    def report(n: int) -> bytes:
        batch, msisdn = pairs[(n - 1) % len(pairs)]
        body = {
            "type": "recipient_delivery_report_sms",
            "batch_id": batch,
            "recipient": msisdn.lstrip("+"),
            "code": 0,
            "status": "Delivered",
            "at": at,
            "operator_status_at": at,
            "number_of_message_parts": 1,
            "encoding": "GSM",
        }
        return post_request("127.0.0.1", port, "/webhooks/sinch", body, {})

    seconds = min(10.0, len(pairs) / 3000)
    before = cpu_seconds(gateway_pid)
    result = await run_load(
        "127.0.0.1", port, report, concurrency=args.concurrency, duration=seconds, warmup=0.5
    )
    after = cpu_seconds(gateway_pid)
    print(
        f"machine: {os.cpu_count()} cores; gateway workers: {args.workers}; "
        f"{args.messages} messages x {args.recipients} recipients; Postgres, gateway and "
        "load generator on the same machine"
    )
    print(f"per-recipient reports at {args.concurrency} concurrent: {result.summary()}")
    spent = seconds + 0.5
    print(
        "CPU used, in cores: "
        + ", ".join(f"{name} {(after[name] - before[name]) / spent:.2f}" for name in after)
    )


if __name__ == "__main__":
    main()
