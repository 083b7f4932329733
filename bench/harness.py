"""What the benchmarks share: a throwaway database, free ports, an environment of their own.

Each benchmark runs the gateway (or a worker, or the simulator) as a child process whose
settings come only from what the benchmark passes: variables of ours set in the caller's shell
are dropped, so the figures do not depend on it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

REPO = Path(__file__).resolve().parents[1]

# Settings a child process must not inherit from the caller's shell.
_OURS = ("SMSGW_", "SINCH_", "PROMETHEUS_")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_environment(*, drop: tuple[str, ...] = (), **extra: str) -> dict[str, str]:
    """This process's environment without our settings (nor ``drop``), plus ``extra``."""
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(_OURS + drop)
    }
    environment.update(extra)
    return environment


def gateway_environment(database_url: str, port: int, workers: int) -> dict[str, str]:
    """`smsgateway serve` for an HTTP benchmark: quiet, no dispatcher (the accept or webhook
    path alone), its simulator on a port of its own."""
    return clean_environment(
        DATABASE_URL=database_url,
        PORT=str(port),
        SMSGW_WORKERS=str(workers),
        SMSGW_LOG_LEVEL="WARNING",
        SMSGW_DISPATCHER="off",
        SMSGW_SIMULATOR_PORT=str(free_port()),
        SMSGW_DB_POOL_MAX_SIZE="10",
    )


def migrate(environment: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "smsgateway", "migrate"],
        env=environment,
        check=True,
        stdout=subprocess.DEVNULL,
    )


@contextmanager
def benchmark_database(server_dsn: str | None) -> Iterator[str]:
    """A new, empty database on ``server_dsn``'s server, or on a throwaway embedded Postgres
    when it is None; yields its DSN. (The embedded one is stopped after; a database made on
    a given server is left there, for a look at what the run wrote.)"""
    with tempfile.TemporaryDirectory() as workspace:
        embedded = None
        if server_dsn is None:
            from smsgateway.store.embedded import start_embedded_postgres

            embedded = start_embedded_postgres(Path(workspace), database="postgres")
            server_dsn = embedded.dsn
        try:
            yield asyncio.run(create_database(server_dsn))
        finally:
            if embedded is not None:
                embedded.stop()


async def create_database(server_dsn: str) -> str:
    name = f"smsgw_bench_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(server_dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    head, sep, query = server_dsn.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{name}{sep}{query}"


# The tutorial's app with its wrk script (post.lua), beside this repository.
PEER_SOURCE = REPO.parent / "shared" / "peers" / "express-seed"


def wrk_invocation(
    url: str,
    body: str,
    headers: dict[str, str],
    *,
    connections: int,
    seconds: float,
    rate: float | None = None,
    run_id: str = "bench",
) -> tuple[list[str], dict[str, str]]:
    """The wrk command and environment that POST ``body`` (a template of the peer's post.lua:
    {{TO}}, {{CODE}}, {{N}}) to ``url``: as fast as answered, or at ``rate`` requests/s
    through paced.lua. Its output holds one ``BENCH`` line (``wrk_summary``)."""
    threads = min(2, connections)
    environment = clean_environment(
        BENCH_BODY=body,
        BENCH_HEADERS="\n".join(f"{k}: {v}" for k, v in headers.items()),
        BENCH_RUN_ID=run_id,
        BENCH_POST_LUA=str(PEER_SOURCE / "post.lua"),
        BENCH_RATE=str(rate or 0),
        BENCH_THREADS=str(threads),
    )
    script = PEER_SOURCE / "post.lua" if rate is None else Path(__file__).parent / "paced.lua"
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:.0f}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    return command, environment


def wrk_summary(output: str) -> dict[str, float]:
    """The figures of the ``BENCH`` line post.lua prints when wrk is done."""
    line = next((x for x in output.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no BENCH line:\n{output}")
    return {k: float(v) for k, v in (pair.split("=") for pair in line.split()[1:])}
