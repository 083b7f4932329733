"""A small closed-loop HTTP/1.1 load generator for the benchmarks (keep-alive, raw asyncio).

A Python HTTP client library costs more CPU per request than the gateway spends answering
it; on a 2-core machine that would measure the client. This one writes prepared requests on
persistent connections and parses only the status line and Content-Length.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def summary(self) -> str:
        return (
            f"{self.requests} requests in {self.seconds:.1f} s = {self.rate:,.0f}/s; "
            f"latency p50 {self.percentile(50) * 1000:.1f} ms, "
            f"p90 {self.percentile(90) * 1000:.1f} ms, "
            f"p99 {self.percentile(99) * 1000:.1f} ms, "
            f"max {max(self.latencies, default=0) * 1000:.1f} ms, "
            f"mean {statistics.fmean(self.latencies) * 1000 if self.latencies else 0:.1f} ms; "
            f"statuses {dict(sorted(self.statuses.items()))}; errors {self.errors}"
        )


def wait_until_serving(port: int, workers: int, timeout: float = 60.0) -> None:
    """Waits until ``/readyz`` answers 200 and every worker listens on ``port``.

    A worker listens only once its start-up is done; load started before the last one
    listens would all land on the others, for good, since the connections are kept alive.
    """
    import httpx
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listening = sum(
            1
            for connection in psutil.net_connections(kind="tcp")
            if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port
        )
        try:
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            ready = False
        if ready and listening >= workers:
            return
        time.sleep(0.1)
    raise TimeoutError(f"the gateway on port {port} did not get ready in {timeout:.0f} s")


def post_request(host: str, port: int, path: str, body: object, headers: dict[str, str]) -> bytes:
    payload = json.dumps(body).encode()
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    body = await reader.readexactly(length) if length else b""
    return status, body


async def run_load(
    host: str,
    port: int,
    make_request: Callable[[int], bytes],
    *,
    concurrency: int,
    duration: float,
    warmup: float = 1.0,
    on_response: Callable[[int, bytes], None] | None = None,
    rate: float | None = None,
) -> LoadResult:
    """``concurrency`` connections, each sending its next request as soon as the last ends;
    with ``rate``, at that many requests per second in all instead, evenly spaced.

    At a set rate, latency counts from when a request was due, not when it went out, so a
    stall shows in the figures however many requests it delayed (no coordinated omission).
    """
    result = LoadResult()
    counter = 0
    started = time.perf_counter()
    measure_from = started + warmup
    stop_at = measure_from + duration

    async def connection(lane: int) -> None:
        nonlocal counter
        reader, writer = await asyncio.open_connection(host, port)
        interval = None if rate is None else concurrency / rate
        due = started + (0.0 if rate is None else lane / rate)
        try:
            while True:
                now = time.perf_counter()
                if interval is not None:
                    if due > now:
                        await asyncio.sleep(due - now)
                    now, due = due, due + interval
                if now >= stop_at:
                    return
                counter += 1
                writer.write(make_request(counter))
                try:
                    status, body = await _read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    result.errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                ended = time.perf_counter()
                if on_response is not None:
                    on_response(status, body)
                if now >= measure_from:
                    result.requests += 1
                    result.statuses[status] = result.statuses.get(status, 0) + 1
                    result.latencies.append(ended - now)
        finally:
            writer.close()

    await asyncio.gather(*(connection(lane) for lane in range(concurrency)))
    result.seconds = min(time.perf_counter(), stop_at) - measure_from
    return result
