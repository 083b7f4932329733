"""Accept throughput, p99 and CPU per accept with a realistic protection policy on and off.

Usage: .venv/bin/python bench/bench_protection.py [--workers N] [--concurrency C]
       [--seconds S] [--rounds R] [--database-url URL]   (default: an embedded Postgres)
       [--redis-counters redis://127.0.0.1:6379/0]

One gateway (`smsgateway serve`, dispatcher off), two API keys in two tenants, same run:
- off: a tenant with no policy of its own (the gateway default: no country list, the default
  refused number types, no velocity or spend counters);
- on:  a tenant locked to the Nordics with velocity limits per prefix, country and key, and
  daily and monthly segment caps, all set high enough that nothing is refused, so every accept
  takes its five counters (prefix, country, key, day, month) in the accept transaction.
Single-recipient messages to random Swedish mobiles at C concurrent callers, as fast as they
are answered, alternating off/on R times so that a busy machine weighs on both alike.
Prints each run, then the medians and the on/off ratios. Postgres CPU is that of the backends
connected to the benchmark's database (the server may be shared with other work).

``--redis-counters URL`` runs the gateway with SMSGW_PROTECTION_COUNTERS_URL=URL: "on" takes its
three velocity counters in Redis (one script call per accept) and its two spend counters in
Postgres. The Redis server's CPU (INFO cpu, the whole server's: share it with nothing else for
a clean figure) is added to the CPU per accept of both modes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path

import asyncpg
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_accept import cpu_seconds, swedish_mobile
from harness import benchmark_database, create_api_key, free_port, gateway_environment, migrate
from loadgen import post_request, run_load, wait_until_serving

REPO = Path(__file__).resolve().parents[1]

REALISTIC_POLICY = {
    "allowed_countries": ["SE", "NO", "DK", "FI"],
    "velocity": {"per_prefix": 1_000_000, "per_country": 100_000_000, "per_api_key": 100_000_000},
    "spend": {"daily_segments": 1_000_000_000, "monthly_segments": 10_000_000_000},
}


def smsgateway(environment: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "smsgateway", *args],
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--database-url")
    parser.add_argument(
        "--redis-counters",
        help="a Redis URL: velocity counters there (SMSGW_PROTECTION_COUNTERS_URL)",
    )
    args = parser.parse_args()
    with benchmark_database(args.database_url) as dsn:
        run(args, dsn)


def run(args: argparse.Namespace, database_url: str) -> None:
    port = free_port()
    environment = gateway_environment(database_url, port, args.workers)
    if args.redis_counters:
        environment["SMSGW_PROTECTION_COUNTERS_URL"] = args.redis_counters
    migrate(environment)
    keys = {}
    for mode in ("off", "on"):
        keys[mode] = create_api_key(environment, f"bench-{mode}", "--tenant", f"bench-{mode}")
    smsgateway(environment, "policy", "set", "--tenant", "bench-on", json.dumps(REALISTIC_POLICY))
    gateway = subprocess.Popen(
        [sys.executable, "-m", "smsgateway", "serve"],
        env=environment,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_until_serving(port, args.workers)
        print(
            f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; gateway workers: "
            f"{args.workers}; velocity counters in {args.redis_counters or 'Postgres'}; "
            f"policy on: {json.dumps(REALISTIC_POLICY)}"
        )
        asyncio.run(measure(port, keys, args, gateway.pid, database_url))
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)


async def backend_pids(database_url: str) -> list[int]:
    """The Postgres backends serving the gateway: the server is shared with other work, whose
    CPU must not count."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await connection.close()
    return [row["pid"] for row in rows]


def redis_cpu(url: str | None) -> float:
    """The Redis server's CPU seconds so far (0 without Redis)."""
    if url is None:
        return 0.0
    import redis

    client = redis.Redis.from_url(url)
    try:
        info = client.info("cpu")
    finally:
        client.close()
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def backend_cpu(pids: list[int]) -> dict[int, float]:
    used = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            used[pid] = times.user + times.system
    return used


async def measure(
    port: int, keys: dict[str, str], args: argparse.Namespace, pid: int, database_url: str
) -> None:
    rng = random.Random(7)
    figures: dict[str, list[tuple[float, float, float]]] = {"off": [], "on": []}
    for _ in range(args.rounds):
        for mode in ("off", "on"):
            headers = {"X-API-Key": keys[mode]}

            def single(_: int, headers: dict[str, str] = headers) -> bytes:
                body = {"to": swedish_mobile(rng), "body": "Your code is 123456"}
                return post_request("127.0.0.1", port, "/v1/messages", body, headers)

            before = cpu_seconds(pid)
            before_backends = backend_cpu(await backend_pids(database_url))
            before_redis = redis_cpu(args.redis_counters)
            result = await run_load(
                "127.0.0.1", port, single, concurrency=args.concurrency, duration=args.seconds
            )
            after = cpu_seconds(pid)
            after_backends = backend_cpu(await backend_pids(database_url))
            gateway_us = (after["gateway"] - before["gateway"]) / max(1, result.requests) * 1e6
            # A backend that started during the run counts whole; one that ended, not at all.
            postgres_seconds = sum(
                used - before_backends.get(backend, 0.0) for backend, used in after_backends.items()
            )
            postgres_us = postgres_seconds / max(1, result.requests) * 1e6
            redis_us = (
                (redis_cpu(args.redis_counters) - before_redis) / max(1, result.requests) * 1e6
            )
            print(
                f"policy {mode:>3}: {result.summary()}; CPU per accept: gateway "
                f"{gateway_us:.0f} us, postgres {postgres_us:.0f} us"
                + (f", redis {redis_us:.0f} us" if args.redis_counters else "")
            )
            assert set(result.statuses) == {202}, result.statuses
            figures[mode].append(
                (result.rate, result.percentile(99), gateway_us + postgres_us + redis_us)
            )
    medians = {
        mode: [statistics.median(run[i] for run in runs) for i in range(3)]
        for mode, runs in figures.items()
    }
    off, on = medians["off"], medians["on"]
    print(
        f"medians: off {off[0]:,.0f}/s p99 {off[1] * 1000:.1f} ms CPU {off[2]:.0f} us/accept; "
        f"on {on[0]:,.0f}/s p99 {on[1] * 1000:.1f} ms CPU {on[2]:.0f} us/accept"
    )
    print(
        f"ratio on/off: throughput {on[0] / off[0]:.2f}, p99 {on[1] / off[1]:.2f}, "
        f"CPU per accept (gateway + postgres{' + redis' if args.redis_counters else ''}) "
        f"{on[2] / off[2]:.2f}"
    )


if __name__ == "__main__":
    main()
