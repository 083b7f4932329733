"""Dispatch throughput: queued messages handed to the simulator, and the global cap held.

Usage: .venv/bin/python bench/bench_dispatch.py [--messages N] [--workers K]
       [--concurrency C] [--latency-ms L] [--cap R] [--database-url URL]
       [--transport aiohttp|httpx]

Stores N single-recipient messages, then starts the simulator (its own process, L ms of
latency per request) and K `smsgateway worker` processes, and measures how fast the outbox
drains to Sinch. With --cap R the workers share SMSGW_SEND_RATE_PER_SECOND=R and the script
reports the rate they held against it. --transport sets the workers' SMSGW_SINCH_TRANSPORT
(default: the gateway's default). Also prints the CPU the workers and the simulator spent per
message while the queue drained. Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import psutil

from smsgateway.components import SIMULATOR_DEFAULT_FROM
from smsgateway.store.messages import NewMessage, insert_accepted

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import benchmark_database, clean_environment, free_port, migrate

REPO = Path(__file__).resolve().parents[1]


def message(now: datetime, number: int) -> NewMessage:
    return NewMessage(
        id=uuid.uuid4(),
        tenant="bench",
        api_key_id=None,
        sender=None,
        body="Your code is 123456",
        encoding="GSM-7",
        segment_count=1,
        character_count=19,
        recipients=(f"+4670{number:07d}",),
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


async def store_messages(dsn: str, count: int) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        now = datetime.now(UTC)
        for start in range(0, count, 500):
            await insert_accepted(
                connection, [message(now, n) for n in range(start, min(count, start + 500))]
            )
    finally:
        await connection.close()


async def sent_count(connection: asyncpg.Connection) -> int:
    count: int = await connection.fetchval(
        "SELECT count(*) FROM sms_log WHERE sinch_batch_id IS NOT NULL"
    )
    return count


def cpu_seconds(processes: dict[str, list[psutil.Process]]) -> dict[str, float]:
    """User + system CPU so far, per group of processes."""
    return {
        name: sum(sum(process.cpu_times()[:2]) for process in group)
        for name, group in processes.items()
    }


async def watch(
    dsn: str, total: int, deadline: float, processes: dict[str, list[psutil.Process]]
) -> tuple[list[tuple[float, int]], dict[str, float]]:
    """Samples of (seconds, messages sent), and each group's CPU from the first send to the
    last sample."""
    connection = await asyncpg.connect(dsn)
    samples: list[tuple[float, int]] = []
    first_cpu: dict[str, float] | None = None
    cpu: dict[str, float] = {}
    try:
        started = time.monotonic()
        while time.monotonic() - started < deadline:
            done = await sent_count(connection)
            now_cpu = cpu_seconds(processes)
            samples.append((time.monotonic() - started, done))
            if done > 0 and first_cpu is None:
                first_cpu = now_cpu
            if first_cpu is not None:
                cpu = {name: now_cpu[name] - first_cpu[name] for name in now_cpu}
            if done >= total:
                break
            await asyncio.sleep(0.25)
    finally:
        await connection.close()
    return samples, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--cap", type=float)
    parser.add_argument("--database-url")
    parser.add_argument("--transport", choices=["raw", "aiohttp", "httpx"])
    args = parser.parse_args()
    with benchmark_database(args.database_url) as dsn:
        run(args, dsn)


def run(args: argparse.Namespace, dsn: str) -> None:
    simulator_port = free_port()
    base_env = {
        **clean_environment(),
        "DATABASE_URL": dsn,
        "SMSGW_LOG_LEVEL": "WARNING",
    }
    migrate(base_env)
    asyncio.run(store_messages(dsn, args.messages))
    simulator = subprocess.Popen(
        # A plan with a default originator, as `serve` gives its own simulator: the stored
        # messages name no sender.
        [
            sys.executable,
            "-m",
            "smsgateway",
            "simulator",
            "--port",
            str(simulator_port),
            "--default-from",
            SIMULATOR_DEFAULT_FROM,
        ],
        env=base_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: list[subprocess.Popen[bytes]] = []
    try:
        simulator_url = f"http://127.0.0.1:{simulator_port}"
        for _ in range(100):
            try:
                httpx.get(f"{simulator_url}/_admin/health", timeout=0.5)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        httpx.put(
            f"{simulator_url}/_admin/faults",
            json={"latency_ms": args.latency_ms, "scope": "all"},
        ).raise_for_status()
        worker_env = {
            **base_env,
            "SINCH_BASE_URL": simulator_url,
            "SINCH_SERVICE_PLAN_ID": "simulator-plan",
            "SINCH_API_TOKEN": "simulator-token",
            # The simulator, not a real account: no public URL or sender rules apply.
            "SMSGW_SINCH_SIMULATOR": "on",
            "SMSGW_DISPATCH_CONCURRENCY": str(args.concurrency),
            "SMSGW_DISPATCH_BATCH_SIZE": str(args.concurrency * 2),
            "SMSGW_DISPATCH_POLL_SECONDS": "0.05",
            "SMSGW_DB_POOL_MAX_SIZE": "20",
        }
        if args.cap:
            worker_env["SMSGW_SEND_RATE_PER_SECOND"] = str(args.cap)
        if args.transport:
            worker_env["SMSGW_SINCH_TRANSPORT"] = args.transport
        for _ in range(args.workers):
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "smsgateway", "worker"],
                    env=worker_env,
                    cwd=REPO,
                    stdout=subprocess.DEVNULL,
                )
            )
        processes = {
            "workers": [psutil.Process(process.pid) for process in workers],
            "simulator": [psutil.Process(simulator.pid)],
        }
        samples, cpu = asyncio.run(watch(dsn, args.messages, 600, processes))
    finally:
        for process in workers:
            process.terminate()
        for process in workers:
            process.wait(timeout=30)
        simulator.terminate()
        simulator.wait(timeout=30)
    report(args, samples, cpu)


def report(
    args: argparse.Namespace, samples: list[tuple[float, int]], cpu: dict[str, float]
) -> None:
    print(
        f"machine: {os.cpu_count()} cores; {args.workers} worker processes x "
        f"{args.concurrency} concurrent sends; simulator latency {args.latency_ms:g} ms; "
        f"Sinch transport {args.transport or 'default'}; "
        "Postgres, simulator and workers on this machine"
    )
    done = samples[-1][1]
    first = next((t for t, n in samples if n > 0), samples[-1][0])
    elapsed = samples[-1][0] - first
    print(
        f"dispatched {done} of {args.messages} messages in {elapsed:.1f} s after the first "
        f"send = {done / elapsed if elapsed else 0:,.0f} messages/s"
    )
    # The steady middle: skip the first and last 10 % of the messages.
    low, high = args.messages * 0.1, args.messages * 0.9
    window = [(t, n) for t, n in samples if low <= n <= high]
    if len(window) >= 2:
        (t0, n0), (t1, n1) = window[0], window[-1]
        steady = (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0
        line = f"steady rate (10 %-90 % of the queue): {steady:,.0f} messages/s"
        if args.cap:
            line += f"; cap {args.cap:g}/s, deviation {(steady - args.cap) / args.cap:+.1%}"
        print(line)
    sent = done - next((n for _, n in samples if n > 0), 0)
    if sent > 0 and cpu:
        print(
            "CPU per message while draining: "
            + ", ".join(f"{name} {seconds / sent * 1000:.3f} ms" for name, seconds in cpu.items())
            + f" (over {sent} messages)"
        )


if __name__ == "__main__":
    main()
