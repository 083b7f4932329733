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
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import asyncpg

REPO = Path(__file__).resolve().parents[1]

# Settings a child process must not inherit from the caller's shell.
_OURS = ("SMSGW_", "SINCH_", "PROMETHEUS_")


# Time-ordered ids (as the gateway's UUIDv7): 48 bits of milliseconds, then 80 of hash.
_HISTORY_MESSAGES = """
INSERT INTO sms_log (id, tenant, body, encoding, segment_count, character_count,
                     recipient_count, status, created_at, updated_at, submitted_at)
SELECT (lpad(to_hex((extract(epoch FROM t.at) * 1000)::bigint), 12, '0')
        || substr(md5(g::text), 1, 20))::uuid,
       'tenant' || (g % $2), 'Your code is ' || lpad((g % 1000000)::text, 6, '0'),
       'GSM-7', 1, 19, 1,
       CASE WHEN g % 200 = 1 THEN 'submitted' WHEN g % 100 = 0 THEN 'failed'
            ELSE 'delivered' END,
       t.at, t.at, t.at
FROM generate_series(1, $1) AS g,
     LATERAL (SELECT now() - $3::interval * (($1 - g)::float8 / $1)) AS t(at)
"""

_HISTORY_RECIPIENTS = """
INSERT INTO sms_recipient (message_id, position, msisdn, status, updated_at)
SELECT id, 0, '+4670' || lpad((abs(hashtext(id::text)) % 10000000)::text, 7, '0'),
       CASE status WHEN 'submitted' THEN 'submitted' ELSE status END, created_at
FROM sms_log
"""

_HISTORY_EVENTS = """
INSERT INTO sms_event (message_id, recipient, kind, status, detail, occurred_at)
SELECT r.message_id, r.msisdn, 'delivery_report', r.status,
       jsonb_build_object('report', jsonb_build_object(
           'type', 'recipient_delivery_report_sms', 'recipient', substr(r.msisdn, 2),
           'status', 'Delivered', 'code', 0)),
       r.updated_at
FROM sms_recipient AS r
"""


async def write_history(
    connection: asyncpg.Connection, messages: int, *, tenants: int = 10, days: int = 30
) -> list[tuple[str, str, float]]:
    """``messages`` past messages (one recipient and one report event each) spread over
    ``days``, then VACUUM ANALYZE and a CHECKPOINT: the tables of a gateway that has been
    running, whose planner statistics autovacuum keeps. From empty, never-analysed tables (a
    gateway's first minute) Postgres plans hash joins over sequential scans, and a benchmark
    of a few seconds would measure those. Returns (step, rows, seconds) per step."""
    steps: list[tuple[str, str, float]] = []
    for name, statement, values in (
        ("sms_log", _HISTORY_MESSAGES, (messages, tenants, timedelta(days))),
        ("sms_recipient", _HISTORY_RECIPIENTS, ()),
        ("sms_event", _HISTORY_EVENTS, ()),
    ):
        started = time.perf_counter()
        status = await connection.execute(statement, *values, timeout=3600)
        steps.append((name, f"{int(status.split()[-1]):,} rows", time.perf_counter() - started))
    started = time.perf_counter()
    await connection.execute("VACUUM ANALYZE", timeout=3600)
    steps.append(("VACUUM ANALYZE", "", time.perf_counter() - started))
    # The history's hundreds of MB of WAL and dirty pages would otherwise be flushed by a
    # checkpoint during the measured run: a cost of writing the history, not of the gateway.
    started = time.perf_counter()
    await connection.execute("CHECKPOINT", timeout=3600)
    steps.append(("CHECKPOINT", "", time.perf_counter() - started))
    return steps


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


def create_api_key(environment: dict[str, str], name: str = "bench", *options: str) -> str:
    """A new API key made by the real ``smsgateway apikey create``, with a limit no benchmark
    reaches (``options``: more of its flags, e.g. ``--tenant``)."""
    command = [sys.executable, "-m", "smsgateway", "apikey", "create", "--name", name]
    created = subprocess.run(
        [*command, "--rate", "1000000/second", *options],
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    )
    return created.stdout.splitlines()[0]


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
