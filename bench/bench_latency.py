"""Direct-call latency: from a message's acceptance to its request reaching Sinch (the simulator).

Usage: .venv/bin/python bench/bench_latency.py [--idle-count 100] [--idle-gap 0.1]
       [--rate 1000] [--seconds 10] [--workers 1] [--listen on|off] [--dispatcher process|on]
       [--history 200000] [--delivery-report per_recipient|per_recipient_final|none]
       [--timeline SECONDS] [--database-url URL]

Runs ``smsgateway serve`` with its dispatcher (``--dispatcher``) and its own simulator (0 ms
latency), on a database holding ``--history`` past messages, analysed (harness.write_history),
then:

- **idle**: ``--idle-count`` single-recipient sends, one at a time, ``--idle-gap`` seconds
  apart, so that each one finds the dispatcher asleep;
- **loaded**: single-recipient sends at ``--rate`` per second for ``--seconds`` (paced, so the
  figure does not depend on how fast the gateway answers).

For every message, the latency is the simulator's record of the batch's arrival minus the
message's ``created_at`` (stamped by the gateway as it accepted it, before its commit). Both
clocks are this machine's; the simulator keeps milliseconds (truncated), so each figure may be
up to 1 ms low. ``--listen off`` gives the poll-only figure (``SMSGW_DISPATCH_LISTEN=off``) for
comparison. Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (
    benchmark_database,
    create_api_key,
    free_port,
    gateway_environment,
    migrate,
    write_history,
    wrk_invocation,
    wrk_summary,
)
from loadgen import post_request, run_load, wait_until_serving

REPO = Path(__file__).resolve().parents[1]
PLAN, TOKEN = "simulator-plan", "simulator-token"
TARGETS_MS = {"idle p50": 5.0, "idle p99": 25.0, "loaded p99": 50.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-count", type=int, default=100)
    parser.add_argument("--idle-gap", type=float, default=0.1)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--listen", choices=("on", "off"), default="on")
    parser.add_argument(
        "--load",
        choices=("wrk", "python"),
        default="wrk" if shutil.which("wrk") else "python",
        help="the loaded phase's load generator: wrk paced (bench/paced.lua, needs wrk and "
        "the tutorial peer's post.lua) or ours in Python (a core of its own at 1,000/s)",
    )
    parser.add_argument(
        "--dispatcher",
        choices=("process", "on"),
        default="process",
        help="process (make run's default: a dispatch process beside the API workers) or on "
        "(inside each API worker)",
    )
    parser.add_argument(
        "--history",
        type=int,
        default=200_000,
        help="past messages written (and analysed) before the run, as in a gateway that has "
        "been running (0: empty tables)",
    )
    parser.add_argument(
        "--delivery-report",
        choices=("per_recipient", "per_recipient_final", "none"),
        default="per_recipient",
        help="what each message asks of Sinch: per_recipient (the API's default: the simulator "
        "posts a report per status change, three per message, to the gateway on the same "
        "cores), per_recipient_final (one), none",
    )
    parser.add_argument(
        "--timeline",
        type=float,
        metavar="SECONDS",
        help="also print the loaded phase's latency per window of SECONDS (e.g. 0.5)",
    )
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with benchmark_database(args.database_url) as dsn:
        run(args, dsn)


def run(args: argparse.Namespace, database_url: str) -> None:
    port = free_port()
    simulator_port = free_port()
    environment = gateway_environment(database_url, port, args.workers) | {
        "SMSGW_DISPATCHER": args.dispatcher,
        "SMSGW_DISPATCH_LISTEN": args.listen,
        "SMSGW_SIMULATOR_PORT": str(simulator_port),
        "SMSGW_DB_POOL_MAX_SIZE": "20",
    }
    migrate(environment)
    if args.history:
        asyncio.run(_write_history(database_url, args.history))
    key = create_api_key(environment)
    gateway = subprocess.Popen(
        [sys.executable, "-m", "smsgateway", "serve"],
        env=environment,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_until_serving(port, args.workers)
        print(
            f"machine: {os.cpu_count()} cores, shared with other work; gateway workers: "
            f"{args.workers}; SMSGW_DISPATCHER={args.dispatcher}; "
            f"SMSGW_DISPATCH_LISTEN={args.listen}; delivery_report={args.delivery_report}; "
            "simulator latency 0 ms; "
            "Postgres, gateway, simulator and load generator on the same machine"
        )
        asyncio.run(measure(port, simulator_port, key, database_url, args))
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)


async def measure(
    port: int, simulator_port: int, key: str, database_url: str, args: argparse.Namespace
) -> None:
    headers = {"X-API-Key": key}
    rng = random.Random(7)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
        # One send first, so that connections and caches are warm on both sides.
        await _send(client, rng, args.delivery_report)
        idle_ids = []
        for _ in range(args.idle_count):
            idle_ids.append(await _send(client, rng, args.delivery_report))
            await asyncio.sleep(args.idle_gap)

    def single(_: int) -> bytes:
        body = {
            "to": f"+4670{rng.randrange(10**7):07d}",
            "body": "Your code is 123456",
            "delivery_report": args.delivery_report,
        }
        return post_request("127.0.0.1", port, "/v1/messages", body, headers)

    loaded_from = time.time()
    if args.load == "wrk":
        summary = await asyncio.to_thread(_paced_wrk, port, key, args)
        print(f"loaded phase, accepts (wrk, paced): {summary}")
    else:
        load = await run_load(
            "127.0.0.1",
            port,
            single,
            concurrency=args.concurrency,
            duration=args.seconds,
            warmup=0.0,
            rate=args.rate,
        )
        print(f"loaded phase, accepts: {load.summary()}")
    loaded_to = time.time()

    accepted = await _accepted(database_url)
    arrived = await _arrivals(simulator_port, expected=len(accepted))
    idle = _latencies(accepted, arrived, set(idle_ids))
    loaded_ids = {
        message_id
        for message_id, created in accepted.items()
        if loaded_from <= created.timestamp() <= loaded_to
    }
    loaded = _latencies(accepted, arrived, loaded_ids)
    # Sends wrk left in flight as it stopped may be stored after the look above: only the
    # messages it saw count.
    missing = len(set(accepted) - set(arrived))
    print(_line("idle  ", idle, args.idle_count))
    print(_line("loaded", loaded, len(loaded_ids)))
    if args.timeline:
        print(_timeline(accepted, arrived, loaded_ids, loaded_from, args.timeline))
    if missing:
        print(f"{missing} accepted message(s) never reached the simulator")
    figures = {
        "idle p50": _percentile(idle, 50),
        "idle p99": _percentile(idle, 99),
        "loaded p99": _percentile(loaded, 99),
    }
    for name, target in TARGETS_MS.items():
        verdict = "met" if figures[name] <= target else "MISSED"
        print(f"target {name} <= {target:.0f} ms: {figures[name]:.1f} ms, {verdict}")


async def _write_history(database_url: str, messages: int) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        steps = await write_history(connection, messages)
    finally:
        await connection.close()
    print("history: " + ", ".join(f"{name} {rows} in {s:.1f} s" for name, rows, s in steps))


def _paced_wrk(port: int, key: str, args: argparse.Namespace) -> str:
    """The loaded phase's sends from wrk at ``args.rate`` (bench/paced.lua over the tutorial
    peer's post.lua): a load generator that takes far less of the two cores than ours."""
    command, environment = wrk_invocation(
        f"http://127.0.0.1:{port}/v1/messages",
        '{"to": ["{{TO}}"], "body": "Your code is {{CODE}}", "delivery_report": "'
        + args.delivery_report
        + '"}',
        {"X-API-Key": key},
        connections=args.concurrency,
        seconds=args.seconds,
        rate=args.rate,
        run_id="latency",
    )
    result = subprocess.run(command, env=environment, capture_output=True, text=True, check=True)
    figures = wrk_summary(result.stdout)
    return (
        f"{figures['requests']:.0f} requests in {figures['seconds']} s = "
        f"{figures['rps']:,.0f}/s; p50 {figures['p50_us'] / 1000:.1f} ms, "
        f"p99 {figures['p99_us'] / 1000:.1f} ms; 2xx {figures['s2xx']:.0f}"
    )


async def _send(client: httpx.AsyncClient, rng: random.Random, delivery_report: str) -> uuid.UUID:
    answer = await client.post(
        "/v1/messages",
        json={
            "to": f"+4670{rng.randrange(10**7):07d}",
            "body": "Your code is 123456",
            "delivery_report": delivery_report,
        },
    )
    answer.raise_for_status()
    return uuid.UUID(answer.json()["id"])


async def _accepted(database_url: str) -> dict[uuid.UUID, datetime]:
    connection = await asyncpg.connect(database_url)
    try:
        # The run's own messages: the written history was sent by no API key.
        rows = await connection.fetch(
            "SELECT id, created_at FROM sms_log WHERE api_key_id IS NOT NULL"
        )
    finally:
        await connection.close()
    return {row["id"]: row["created_at"] for row in rows}


async def _arrivals(simulator_port: int, *, expected: int) -> dict[uuid.UUID, datetime]:
    """When each batch reached the simulator, by our message id (its client_reference);
    waits (up to a minute) for the dispatcher to hand over every accepted message."""
    base = f"http://127.0.0.1:{simulator_port}"
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    ) as client:
        deadline = time.monotonic() + 60
        while True:
            stats = (await client.get("/_admin/stats")).json()
            if stats.get("batches", 0) >= expected or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        print(
            f"simulator: {stats.get('batches')} batches, callbacks "
            f"{stats.get('callback_outcomes')}, {stats.get('callback_attempts')} attempts"
        )
        arrived: dict[uuid.UUID, datetime] = {}
        page = 0
        while True:
            answer = await client.get(
                f"/xms/v1/{PLAN}/batches", params={"page": page, "page_size": 100}
            )
            answer.raise_for_status()
            batches = answer.json()["batches"]
            for batch in batches:
                reference = batch.get("client_reference")
                if reference:
                    created = datetime.fromisoformat(batch["created_at"].replace("Z", "+00:00"))
                    arrived[uuid.UUID(reference)] = created
            if not batches:
                return arrived
            page += 1


def _latencies(
    accepted: dict[uuid.UUID, datetime],
    arrived: dict[uuid.UUID, datetime],
    ids: set[uuid.UUID],
) -> list[float]:
    return sorted((arrived[m] - accepted[m]).total_seconds() * 1000 for m in ids if m in arrived)


def _timeline(
    accepted: dict[uuid.UUID, datetime],
    arrived: dict[uuid.UUID, datetime],
    ids: set[uuid.UUID],
    start: float,
    window: float,
) -> str:
    """The loaded phase's latency window by window (by acceptance time): a stall shows as a
    window whose max stands out, a queue that grows as a rising median."""
    windows: dict[int, list[float]] = {}
    for message_id in ids:
        if message_id in arrived:
            latency = (arrived[message_id] - accepted[message_id]).total_seconds() * 1000
            slot = int((accepted[message_id].timestamp() - start) // window)
            windows.setdefault(slot, []).append(latency)
    lines = [f"loaded, by acceptance time ({window:g} s windows): count, p50, p99, max ms"]
    for slot in sorted(windows):
        values = sorted(windows[slot])
        lines.append(
            f"  {slot * window:6.1f} s  {len(values):5d}  {_percentile(values, 50):7.1f}"
            f"  {_percentile(values, 99):7.1f}  {values[-1]:7.1f}"
        )
    return "\n".join(lines)


def _percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def _line(name: str, values: list[float], count: int) -> str:
    if not values:
        return f"{name}: no message arrived"
    return (
        f"{name} accepted-to-Sinch-request over {len(values)} of {count} messages: "
        f"p50 {_percentile(values, 50):.1f} ms, p90 {_percentile(values, 90):.1f} ms, "
        f"p99 {_percentile(values, 99):.1f} ms, max {values[-1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
