"""Accept throughput and latency of POST /v1/messages, on this machine, end to end.

Usage: .venv/bin/python bench/bench_accept.py [--workers N] [--concurrency C] [--seconds S]
       [--rate R ...] [--database-url URL]   (default: a throwaway embedded Postgres)

Starts the gateway (`smsgateway serve`) against a fresh database, creates an API key, then
drives it from this process with a keep-alive load generator: single-recipient messages at
C concurrent callers as fast as they are answered (the most it can take), then at each rate R
(requests/s offered by the same C callers: the latency a caller sees at that load; default
2,000, the issue's target), then 1,000-recipient messages one at a time. Dispatching is switched
off (SMSGW_DISPATCHER=off) so that the figures are the accept path alone. Prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import benchmark_database, create_api_key, free_port, gateway_environment, migrate
from loadgen import post_request, run_load, wait_until_serving

REPO = Path(__file__).resolve().parents[1]


def swedish_mobile(rng: random.Random) -> str:
    return f"+4670{rng.randrange(10**7):07d}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, nargs="*", default=[2000.0])
    parser.add_argument("--database-url")
    args = parser.parse_args()

    with benchmark_database(args.database_url) as dsn:
        run(args, dsn)


def run(args: argparse.Namespace, database_url: str) -> None:
    port = free_port()
    environment = gateway_environment(database_url, port, args.workers)
    migrate(environment)
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
            f"machine: {os.cpu_count()} cores; gateway workers: {args.workers}; "
            f"Postgres, gateway and load generator on the same machine"
        )
        asyncio.run(measure(port, key, args, gateway.pid))
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)


def cpu_seconds(gateway_pid: int) -> dict[str, float]:
    """CPU time used so far by the gateway's processes, Postgres, and this load generator."""
    gateway = psutil.Process(gateway_pid)
    gateway_processes = [gateway, *gateway.children(recursive=True)]
    used = {"gateway": 0.0, "postgres": 0.0, "load generator": 0.0}
    for process in gateway_processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            used["gateway"] += times.user + times.system
    for process in psutil.process_iter(["name"]):
        if process.info["name"] in ("postgres", "postmaster"):
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                used["postgres"] += times.user + times.system
    me = psutil.Process().cpu_times()
    used["load generator"] = me.user + me.system
    return used


async def measure(port: int, key: str, args: argparse.Namespace, gateway_pid: int) -> None:
    rng = random.Random(7)
    headers = {"X-API-Key": key}

    def single(_: int) -> bytes:
        body = {"to": swedish_mobile(rng), "body": "Your code is 123456"}
        return post_request("127.0.0.1", port, "/v1/messages", body, headers)

    for rate in [None, *args.rate]:
        before = cpu_seconds(gateway_pid)
        result = await run_load(
            "127.0.0.1",
            port,
            single,
            concurrency=args.concurrency,
            duration=args.seconds,
            rate=rate,
        )
        after = cpu_seconds(gateway_pid)
        pace = "as fast as answered" if rate is None else f"offered {rate:,.0f}/s"
        print(
            f"single-recipient accepts at {args.concurrency} concurrent, {pace}: {result.summary()}"
        )
        seconds = args.seconds + 1  # the warm-up second is inside the CPU figures too
        print(
            "CPU used, in cores: "
            + ", ".join(f"{name} {(after[name] - before[name]) / seconds:.2f}" for name in after)
            + f" (postgres counts every Postgres on the machine); gateway CPU per accept "
            f"{(after['gateway'] - before['gateway']) / max(1, result.requests) * 1e6:.0f} us"
        )

    big = {"to": [swedish_mobile(rng) for _ in range(1000)], "body": "Storm warning"}
    latencies = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
        for _ in range(20):
            started = time.perf_counter()
            response = await client.post("/v1/messages", json=big, timeout=30)
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 202, response.text
    print(
        f"1,000-recipient message, one at a time (20): median "
        f"{statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
