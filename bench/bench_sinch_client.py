"""Sinch client throughput and overhead, against the simulator running in another process.

Usage: .venv/bin/python bench/bench_sinch_client.py [--duration 10] [--concurrency 64 128]
       [--pool httpx sharded aiohttp] [--loop asyncio|uvloop] [--rounds 1]
       [--latency-ms 50] [--overhead-duration 5] [--overhead-concurrency 32]

Starts `python -m smsgateway simulator --port P` as a separate process, then drives ONE
SinchClient (one pooled httpx.AsyncClient, as many connections as sends in flight) with N
concurrent senders for a fixed time and prints sends/second. The simulator's fault API adds
`latency_ms` to every request, so N / latency is the ceiling (64 / 0.05 s = 1,280/s). The
overhead run sets no latency and divides the client process's CPU time by the requests made:
what one send costs the gateway's process (httpx, the client, pydantic, the event loop).
Both processes share this machine's cores, so the simulator's CPU is printed too. Each figure
is taken for every --pool: httpx's own pool, ShardedTransport (pools of 8), and
AiohttpTransport (httpx on aiohttp's pool) and RawTransport (HTTP/1.1 on asyncio and
httptools, the gateway's default). A sequential run then splits
the client's own CPU from httpx's and the transport's. With --rounds N every pool runs N times,
interleaved (A/B back to back on a shared machine), and a summary gives each figure's range.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpcore
import httpx
import psutil

from harness import clean_environment, free_port
from smsgateway.components import SIMULATOR_DEFAULT_FROM
from smsgateway.sinch import (
    AiohttpTransport,
    RawTransport,
    RetryPolicy,
    ShardedTransport,
    SinchClient,
)
from smsgateway.sinch.models import SendBatchRequest, to_wire

REPO = Path(__file__).resolve().parents[1]
PLAN_ID, API_TOKEN = "simulator-plan", "simulator-token"  # the simulator's default plan


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def has_sniffio() -> bool:
    # Without sniffio, httpcore retries a failing `import sniffio` for every lock it creates.
    return importlib.util.find_spec("sniffio") is not None


def start_simulator(port: int) -> tuple[subprocess.Popen[bytes], list[str]]:
    command = [sys.executable, "-m", "smsgateway", "simulator", "--port", str(port)]
    # A plan with a default originator, as `serve` gives its own simulator.
    command += ["--default-from", SIMULATOR_DEFAULT_FROM]
    environment = clean_environment()
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"simulator exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_admin/health", timeout=1).status_code == 200:
                return process, command
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    process.kill()
    raise SystemExit("simulator not ready within 30 s")


def stop_simulator(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass
class Run:
    concurrency: int
    latency_ms: float
    seconds: float = 0.0
    sent: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    client_cpu: float = 0.0
    simulator_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.sent / self.seconds

    @property
    def requests(self) -> int:
        return self.sent + sum(self.errors.values())

    @property
    def client_ms(self) -> float:
        return self.client_cpu / self.requests * 1000

    @property
    def simulator_ms(self) -> float:
        return self.simulator_cpu / self.requests * 1000

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


POOLS = ("httpx", "sharded", "aiohttp", "raw")


def http_client(pool: str, connections: int) -> httpx.AsyncClient:
    """One pooled client: httpx's own pool, ShardedTransport's pools of 8, or aiohttp's."""
    timeout = httpx.Timeout(10.0)
    if pool == "sharded":
        return httpx.AsyncClient(transport=ShardedTransport(connections), timeout=timeout)
    if pool == "aiohttp":
        return httpx.AsyncClient(transport=AiohttpTransport(connections), timeout=timeout)
    if pool == "raw":
        return httpx.AsyncClient(transport=RawTransport(connections), timeout=timeout)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(limits=limits, timeout=timeout)


async def drive(
    base_url: str,
    simulator: psutil.Process,
    pool: str,
    concurrency: int,
    latency_ms: float,
    seconds: float,
) -> Run:
    """`concurrency` senders through one client for `seconds`; CPU measured on both sides."""
    async with httpx.AsyncClient(base_url=base_url) as admin:
        (await admin.post("/_admin/reset")).raise_for_status()
        faults = {"latency_ms": latency_ms}
        (await admin.put("/_admin/faults", json=faults)).raise_for_status()

    run = Run(concurrency, latency_ms)
    async with http_client(pool, concurrency) as http:
        client = SinchClient.for_api_token(
            http,
            service_plan_id=PLAN_ID,
            api_token=API_TOKEN,
            base_url=base_url,
            retry_policy=RetryPolicy(max_attempts=1),
        )
        # Warm the pool and the code paths before the clock starts.
        await asyncio.gather(*(send_one(client, f"warm-{n}") for n in range(concurrency)))
        stop_at = time.perf_counter() + seconds
        counter = iter(range(10**9))

        async def sender() -> None:
            while time.perf_counter() < stop_at:
                n = next(counter)
                started = time.perf_counter()
                try:
                    await send_one(client, f"bench-{concurrency}-{n}")
                except Exception as exc:  # a benchmark counts failures, it does not stop
                    name = type(exc).__name__
                    run.errors[name] = run.errors.get(name, 0) + 1
                else:
                    run.sent += 1
                    run.latencies.append(time.perf_counter() - started)

        simulator_cpu = sum(simulator.cpu_times()[:2])
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        run.seconds = time.perf_counter() - wall
        run.client_cpu = time.process_time() - cpu
        run.simulator_cpu = sum(simulator.cpu_times()[:2]) - simulator_cpu
    return run


async def send_one(client: SinchClient, reference: str) -> None:
    await client.send_batch(
        SendBatchRequest(
            to=["+15551230001"], body="Your code is 123456", client_reference=reference
        )
    )


async def own_overhead(base_url: str, pool: str, requests: int) -> tuple[float, float]:
    """CPU ms per request, one at a time: a bare httpx POST of the same body, then send_batch.

    The difference is what the SinchClient itself adds (model dump, auth, error mapping,
    observer, parsing the answer into a Batch) on top of httpx and its transport.
    """
    async with http_client(pool, 4) as http:
        client = SinchClient.for_api_token(
            http, service_plan_id=PLAN_ID, api_token=API_TOKEN, base_url=base_url
        )
        batch = SendBatchRequest(to=["+15551230001"], body="Your code is 123456")
        url = f"{base_url}/xms/v1/{PLAN_ID}/batches"
        headers = {"Authorization": f"Bearer {API_TOKEN}"}

        async def bare() -> None:
            response = await http.post(url, json=to_wire(batch), headers=headers)
            response.raise_for_status()
            response.json()

        async def sinch() -> None:
            await client.send_batch(batch)

        figures: list[float] = []
        for call in (bare, sinch):
            for _ in range(200):
                await call()
            started = time.process_time()
            for _ in range(requests):
                await call()
            figures.append((time.process_time() - started) / requests * 1000)
        return figures[0], figures[1]


def span(values: list[float]) -> str:
    low, high = min(values), max(values)
    digits = 0 if high >= 100 else 3
    return f"{low:,.{digits}f}" if low == high else f"{low:,.{digits}f}-{high:,.{digits}f}"


def report(title: str, run: Run) -> None:
    ceiling = run.concurrency / (run.latency_ms / 1000) if run.latency_ms else float("inf")
    print(f"{title}")
    print(f"  sends/s: {run.rate:,.0f}  ({run.sent:,} in {run.seconds:.1f} s, errors {run.errors})")
    if ceiling != float("inf"):
        print(f"  ceiling {ceiling:,.0f}/s; reached {run.rate / ceiling:.0%}")
    print(
        f"  latency p50 {run.percentile(0.5) * 1000:.1f} ms, "
        f"p99 {run.percentile(0.99) * 1000:.1f} ms, "
        f"mean {statistics.fmean(run.latencies) * 1000 if run.latencies else 0:.1f} ms"
    )
    print(
        f"  CPU per request: client {run.client_ms:.3f} ms, "
        f"simulator {run.simulator_ms:.3f} ms "
        f"(client {run.client_cpu / run.seconds:.0%} of a core, "
        f"simulator {run.simulator_cpu / run.seconds:.0%})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--overhead-duration", type=float, default=5.0)
    parser.add_argument("--overhead-concurrency", type=int, default=32)
    parser.add_argument("--pool", choices=POOLS, nargs="+", default=list(POOLS))
    parser.add_argument("--sequential-requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=1, help="repeat every pool, interleaved")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--port", type=int, default=0, help="simulator port (default: a free one)")
    args = parser.parse_args()

    port = args.port or free_port()
    process, command = start_simulator(port)
    base_url = f"http://127.0.0.1:{port}"
    print(
        f"machine: {os.cpu_count()} cores ({cpu_model()}), {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, httpx {httpx.__version__}, "
        f"httpcore {httpcore.__version__}, sniffio {'installed' if has_sniffio() else 'absent'}, "
        f"client loop {args.loop}"
    )
    print(f"bench: {shlex.join([sys.executable, *sys.argv])}")
    print(f"simulator (separate process): {shlex.join(command)}")
    runner = asyncio.run
    if args.loop == "uvloop":
        import uvloop

        runner = uvloop.run
    figures: dict[str, dict[str, list[float]]] = {pool: {} for pool in args.pool}

    def note(pool: str, name: str, value: float) -> None:
        figures[pool].setdefault(name, []).append(value)

    try:
        simulator = psutil.Process(process.pid)
        for round_number in range(1, args.rounds + 1):
            if args.rounds > 1:
                print(f"--- round {round_number} of {args.rounds}")
            # Every pool once per round, back to back, so that a neighbour's load hits all alike.
            for pool in args.pool:
                for concurrency in args.concurrency:
                    run = runner(
                        drive(
                            base_url, simulator, pool, concurrency, args.latency_ms, args.duration
                        )
                    )
                    report(
                        f"[{pool} pool] {concurrency} concurrent sends, "
                        f"{args.latency_ms:g} ms injected latency, {args.duration:g} s",
                        run,
                    )
                    note(pool, f"sends/s at {concurrency}", run.rate)
                    note(pool, f"client ms/send at {concurrency}", run.client_ms)
                    note(pool, f"simulator ms/send at {concurrency}", run.simulator_ms)
                overhead = args.overhead_concurrency
                run = runner(
                    drive(base_url, simulator, pool, overhead, 0.0, args.overhead_duration)
                )
                report(
                    f"[{pool} pool] overhead: {overhead} concurrent sends, no injected latency, "
                    f"{args.overhead_duration:g} s",
                    run,
                )
                note(pool, "overhead: client ms/send", run.client_ms)
                note(pool, "overhead: simulator ms/send", run.simulator_ms)
                bare, sinch = runner(own_overhead(base_url, pool, args.sequential_requests))
                print(
                    f"[{pool} pool] one at a time, no injected latency, "
                    f"{args.sequential_requests} requests each:"
                )
                print(
                    f"  bare httpx POST: {bare:.3f} ms CPU/request; "
                    f"SinchClient.send_batch: {sinch:.3f} ms"
                )
                print(f"  the SinchClient's own share: {sinch - bare:.3f} ms CPU/request")
                note(pool, "one at a time: bare httpx ms/request", bare)
                note(pool, "one at a time: SinchClient's own ms/send", sinch - bare)
        print(f"summary over {args.rounds} round(s), lowest-highest:")
        for pool, named in figures.items():
            print(f"  [{pool} pool]")
            for name, values in named.items():
                print(f"    {name}: {span(values)}")
    finally:
        stop_simulator(process)


if __name__ == "__main__":
    main()
