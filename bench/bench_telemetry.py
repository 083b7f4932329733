"""What one request's telemetry costs in-process: its metric updates and its access line.

Usage: .venv/bin/python bench/bench_telemetry.py [--requests 20000] [--repeat 5]
       [--only metrics|access|request]

Runs in a child process with ``PROMETHEUS_MULTIPROC_DIR`` set to a scratch folder (as under
``serve`` with a dispatch process or several workers) and stderr sent to a scratch file, then
prints the best of ``--repeat`` timings, in ns per request, of:

- metrics: what ``RequestContextMiddleware`` updates per request (in-progress gauge up and
  down, the request counter, the duration histogram);
- access: one INFO access line, as the middleware writes it, through ``configure_logging``;
- request: the whole middleware around an app that answers 200 at once.

No sockets and no load: a microbenchmark, steady enough on a busy machine to compare commits
(or run it under ``valgrind --tool=callgrind`` with ``--requests 2000 --repeat 1`` and
compare instruction counts, which the machine's load does not change). Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=("metrics", "access", "request"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _measure(args.requests, args.repeat, args.only)
        return
    with (
        tempfile.TemporaryDirectory(prefix="smsgw-bench-metrics-") as directory,
        tempfile.TemporaryFile() as log_file,
    ):
        environment = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": directory}
        command = [sys.executable, __file__, "--child", "--requests", str(args.requests)]
        command += ["--repeat", str(args.repeat)] + (["--only", args.only] if args.only else [])
        subprocess.run(command, env=environment, stderr=log_file, check=True)
        log_file.seek(0)
        lines = log_file.read().count(b"\n")
    print(f"access lines written to stderr: {lines}")


def _measure(requests: int, repeat: int, only: str | None) -> None:
    from smsgateway.observability.logging import configure_logging

    configure_logging("INFO")
    cases: dict[str, Callable[[int], None]] = {
        "metrics": _metrics_per_request,
        "access": _access_line,
        "request": _whole_middleware,
    }
    for name, run in cases.items():
        if only not in (None, name):
            continue
        run(requests // 10)  # warm: children of labelled metrics, caches
        best = min(_timed(run, requests) for _ in range(repeat))
        print(f"{name:8} {best / requests * 1e9:8.0f} ns per request", flush=True)
    logging.shutdown()


def _timed(run: Callable[[int], None], requests: int) -> float:
    started = time.perf_counter()
    run(requests)
    return time.perf_counter() - started


def _metrics_per_request(requests: int) -> None:
    from smsgateway.observability import metrics

    for _ in range(requests):
        metrics.HTTP_REQUESTS_IN_PROGRESS.inc()
        metrics.HTTP_REQUESTS_IN_PROGRESS.dec()
        metrics.record_http_request("POST", "/v1/messages", 202, 0.0042)


def _access_line(requests: int) -> None:
    from smsgateway.observability.access_log import log_request

    for _ in range(requests):
        log_request(
            logging.INFO, "0123456789abcdef0123456789abcdef", "POST", "/v1/messages", 202, 4.2
        )


def _whole_middleware(requests: int) -> None:
    from starlette.routing import Route
    from starlette.types import Message, Receive, Scope, Send

    from smsgateway.api.middleware import RequestContextMiddleware

    route = Route("/v1/messages", endpoint=lambda: None, methods=["POST"])

    async def app(scope: Scope, _receive: Receive, send: Send) -> None:
        scope["route"] = route
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message: Message) -> None:
        return None

    middleware = RequestContextMiddleware(app)

    async def serve_all() -> None:
        for _ in range(requests):
            scope: Scope = {"type": "http", "method": "POST", "path": "/v1/messages"}
            scope["headers"] = [(b"content-type", b"application/json")]
            await middleware(scope, receive, send)

    asyncio.run(serve_all())


if __name__ == "__main__":
    main()
