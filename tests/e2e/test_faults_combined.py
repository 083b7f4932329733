"""Everything going wrong at once, over a few thousand messages, bounded in time.

Real processes on real sockets: an embedded Postgres that this test stops and restarts, the
simulator as a separate process injecting every Sinch fault it knows (latency, unanswered
sends whose batch Sinch keeps, dropped connections, 5xx, 429, refusals), and ``smsgateway
serve`` killed with SIGKILL twice while callers post. Callers behave as the README asks: each
message carries an Idempotency-Key and is retried until it is answered 202.

At the end: every message answered 202 is stored once and reached Sinch exactly once, or was
refused with its reason; each ended in a final status through Sinch's reports; nothing was
answered 500, to callers or to Sinch's callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from smsgateway.store.embedded import EmbeddedPostgres, start_embedded_postgres
from smsgateway.store.schema import upgrade_to_head
from tests.support.polling import wait_until
from tests.support.processes import (
    create_api_key,
    end_process,
    free_port,
    gateway_environment,
    start_gateway,
    wait_for_simulator,
    wait_until_ready,
)
from tests.support.settings import MIGRATIONS_DIR

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

MESSAGES = 3000
CALLERS = 24
# What happens, and when: after this many messages are acknowledged.
KILLS_AT = (600, 2200)
DATABASE_STOP_AT = 1400
DATABASE_DOWN_S = 2.0
# Each kind of Sinch fault on a few percent of calls, sends and lookups alike.
SINCH_FAULTS = {
    "latency_ms": 5,
    "jitter_ms": 20,
    "timeout_rate": 0.01,
    "reset_rate": 0.01,
    "server_error_rate": 0.02,
    "rate_limit_rate": 0.01,
    "refusal_rate": 0.01,
    "retry_after_s": 0,
    "scope": "all",
}
FINAL = ("delivered", "partially_delivered", "failed", "rejected", "expired", "cancelled")
# Callers may see these while the gateway is down or Postgres is away, and retry.
RETRIED_STATUSES = {503}


@dataclass
class Callers:
    """What the callers saw."""

    acknowledged: dict[str, str] = field(default_factory=dict)  # idempotency key -> id
    answers: Counter[int] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    replayed: int = 0
    unexpected: list[str] = field(default_factory=list)


async def test_crashes_outages_and_sinch_faults_together_lose_and_repeat_nothing(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    # Not under pytest's temp folders: another pytest session resets their permissions, and
    # Postgres (run as its own user) could no longer reach its data to start again.
    data_dir = Path(tempfile.mkdtemp(prefix="smsgw-faults-pg-"))
    database = await asyncio.to_thread(start_embedded_postgres, data_dir)
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, database.dsn)
    simulator_url = f"http://127.0.0.1:{free_port()}"
    gateway_port = free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    environment = gateway_environment(
        DATABASE_URL=database.dsn,
        PORT=str(gateway_port),
        SINCH_BASE_URL=simulator_url,
        SINCH_SERVICE_PLAN_ID="simulator-plan",
        SINCH_API_TOKEN="simulator-token",
        SINCH_NUMBER="+12025550123",
        SMSGW_SINCH_SIMULATOR="off",
        PUBLIC_BASE_URL=gateway_url,
        SMSGW_ALLOW_PRIVATE_PUBLIC_BASE_URL="true",
        SMSGW_DISPATCH_LEASE_SECONDS="5",
        SMSGW_DISPATCH_POLL_SECONDS="0.05",
        SMSGW_SINCH_READ_TIMEOUT_SECONDS="1",
        # Reports lost with a killed gateway are asked for again soon, not after 15 minutes.
        SMSGW_RECONCILE_AFTER_SECONDS="5",
        SMSGW_RECONCILE_MAX_INTERVAL_SECONDS="5",
        SMSGW_LOG_LEVEL="WARNING",
    )
    simulator_log = tmp_path / "simulator.log"
    gateway_log = tmp_path / "gateway.log"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        simulator = start_gateway(
            [
                "simulator",
                "--port",
                simulator_url.rsplit(":", 1)[1],
                "--seed",
                "11",
                "--delivery-delay",
                "0.5",
                "--callback-retry-base",
                "0.2",
            ],
            environment,
            simulator_log,
        )
        processes.append(simulator)
        async with httpx.AsyncClient(base_url=simulator_url, timeout=10) as admin:
            await wait_for_simulator(admin, simulator, simulator_log)
            (await admin.put("/_admin/faults", json=SINCH_FAULTS)).raise_for_status()
            key = await create_api_key(environment)
            processes.append(await _start(environment, gateway_url, gateway_log))

            callers = Callers()
            async with httpx.AsyncClient(
                base_url=gateway_url,
                headers={"X-API-Key": key},
                timeout=10,
                limits=httpx.Limits(max_connections=CALLERS),
            ) as client:
                queue: asyncio.Queue[int] = asyncio.Queue()
                for number in range(MESSAGES):
                    queue.put_nowait(number)
                posting = [
                    asyncio.create_task(_call_until_acknowledged(client, queue, callers))
                    for _ in range(CALLERS)
                ]
                try:
                    await _break_things(
                        callers, processes, environment, database, gateway_url, gateway_log
                    )
                    async with asyncio.timeout(120):
                        await asyncio.gather(*posting)
                finally:
                    for task in posting:
                        task.cancel()
                    await asyncio.gather(*posting, return_exceptions=True)
            posted_s = time.monotonic() - started
            (await admin.delete("/_admin/faults")).raise_for_status()

            connection = await asyncpg.connect(database.dsn)
            try:
                await _wait_until_all_final(connection)
                rows = await connection.fetch(
                    "SELECT id::text, sinch_batch_id, status, status_code, status_detail"
                    " FROM sms_log"
                )
                submitted_events = Counter(
                    str(row["message_id"])
                    for row in await connection.fetch(
                        "SELECT message_id FROM sms_event WHERE kind = 'submitted'"
                    )
                )
                looked_up = await connection.fetchval(
                    "SELECT count(*) FROM sms_event WHERE kind = 'submitted'"
                    " AND detail->>'resolved_by_lookup' = 'true'"
                )
            finally:
                await connection.close()
            stats = (await admin.get("/_admin/stats")).json()
            callback_answers = Counter(
                attempt["http_status"]
                for attempt in (await admin.get("/_admin/callbacks")).json()["attempts"]
            )
    finally:
        for process in reversed(processes):
            end_process(process)
        await asyncio.to_thread(database.stop)
        shutil.rmtree(data_dir, ignore_errors=True)
    elapsed_s = time.monotonic() - started

    sent: dict[str, int] = stats["batches_by_client_reference"]
    stored = {row["id"]: row for row in rows}
    refused = {message_id for message_id, row in stored.items() if row["sinch_batch_id"] is None}
    # The run's figures, for the closing note: `pytest -s` shows them.
    print(  # noqa: T201
        f"\nfault injection: {MESSAGES} messages by {CALLERS} callers in {posted_s:.1f} s,"
        f" all final after {elapsed_s:.1f} s; gateway killed {len(KILLS_AT)}x, Postgres stopped"
        f" once ({DATABASE_DOWN_S} s, immediate); Sinch faults {stats['faults_injected']};"
        f" caller answers {dict(callers.answers)}, transport errors"
        f" {dict(callers.transport_errors)}, replayed {callers.replayed};"
        f" refused by Sinch {len(refused)}; found by lookup {looked_up};"
        f" callback answers {dict(callback_answers)};"
        f" statuses {dict(Counter(row['status'] for row in rows))}",
        file=sys.stderr,
    )

    assert callers.unexpected == [], "only 202, 503 and dropped connections are expected"
    assert 500 not in callers.answers
    assert len(callers.acknowledged) == MESSAGES, "every caller got its 202 in the end"
    acknowledged = set(callers.acknowledged.values())
    assert set(stored) == acknowledged, "stored once per message: retries found their first try"
    assert {reference: n for reference, n in sent.items() if n != 1} == {}, "never sent twice"
    assert set(sent) == set(stored) - refused, "every message sent, but the refused"
    assert stats["batches"] == len(stored) - len(refused)
    assert {
        message_id: (row["status"], row["status_code"], row["status_detail"])
        for message_id, row in stored.items()
        if message_id in refused
        and (row["status"] != "rejected" or not row["status_code"] or not row["status_detail"])
    } == {}, "a message Sinch never took is rejected with Sinch's code and reason"
    assert {m: n for m, n in submitted_events.items() if n != 1} == {}
    assert set(submitted_events) == set(stored) - refused, "one submitted event per batch"
    assert {status for status in callback_answers if status and status >= 500} <= {503}, (
        "Sinch's callbacks are answered 503 while Postgres is away, never 500"
    )
    # Each fault really happened, and the unknown outcomes were settled by lookup.
    assert set(stats["faults_injected"]) == {
        "timeout",
        "reset",
        "server_error",
        "rate_limit",
        "refusal",
    }
    assert refused, "some batches were refused by Sinch"
    assert looked_up > 0


async def _start(
    environment: dict[str, str], gateway_url: str, log: Path
) -> subprocess.Popen[bytes]:
    gateway = start_gateway(["serve"], environment, log)
    await asyncio.to_thread(wait_until_ready, gateway_url, gateway, 60, log)
    return gateway


async def _break_things(
    callers: Callers,
    processes: list[subprocess.Popen[bytes]],
    environment: dict[str, str],
    database: EmbeddedPostgres,
    gateway_url: str,
    log: Path,
) -> None:
    """Kills the gateway and stops Postgres at their points in the run."""
    events = sorted([(at, "kill") for at in KILLS_AT] + [(DATABASE_STOP_AT, "database")])
    for at, what in events:
        await wait_until(
            lambda at=at: len(callers.acknowledged) >= at,  # type: ignore[misc]
            timeout_s=60,
            interval_s=0.01,
            message=f"{at} messages acknowledged",
        )
        if what == "kill":
            gateway = processes[-1]
            os.kill(gateway.pid, signal.SIGKILL)
            await asyncio.to_thread(gateway.wait, 10)
            processes.append(await _start(environment, gateway_url, log))
        else:
            # SIGQUIT: Postgres' immediate shutdown, no checkpoint; crash recovery on start.
            postmaster = database._server.get_pid()
            assert postmaster is not None
            os.kill(postmaster, signal.SIGQUIT)
            await wait_until(
                lambda pid=postmaster: not _running(pid),  # type: ignore[misc]
                timeout_s=10,
                message="Postgres to stop",
            )
            await asyncio.sleep(DATABASE_DOWN_S)  # the outage itself, not a synchronisation
            # The embedded server's handle is cached per folder: start the dead server again.
            await asyncio.to_thread(database._server.ensure_postgres_running)
    return database


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _call_until_acknowledged(
    client: httpx.AsyncClient, queue: asyncio.Queue[int], callers: Callers
) -> None:
    """Posts messages from ``queue``, each retried with its Idempotency-Key until answered 202."""
    while not queue.empty():
        number = queue.get_nowait()
        idempotency_key = f"fault-{number}-{uuid.uuid4().hex[:8]}"
        body = {"to": [f"+4670{number:07d}"], "body": f"fault injection {number}"}
        while True:
            try:
                response = await client.post(
                    "/v1/messages", json=body, headers={"Idempotency-Key": idempotency_key}
                )
            except httpx.TransportError as exc:
                # The gateway is down (killed, restarting): the answer, not the message, is
                # lost; the same key finds the message if it was stored.
                callers.transport_errors[type(exc).__name__] += 1
                await asyncio.sleep(0.05)
                continue
            callers.answers[response.status_code] += 1
            if response.status_code == 202:
                callers.acknowledged[idempotency_key] = response.json()["id"]
                callers.replayed += response.headers.get("idempotent-replayed") == "true"
                break
            if response.status_code in RETRIED_STATUSES:
                await asyncio.sleep(float(response.headers.get("retry-after", "1")) / 10)
                continue
            callers.unexpected.append(f"{response.status_code} {response.text}")
            break


async def _wait_until_all_final(connection: asyncpg.Connection) -> None:
    async def all_final() -> bool:
        with contextlib.suppress(asyncpg.PostgresError):
            pending = await connection.fetchval(
                "SELECT count(*) FROM sms_log WHERE NOT status = ANY($1::text[])", list(FINAL)
            )
            return pending == 0
        return False

    await wait_until(all_final, timeout_s=90, interval_s=0.2, message="every message final")
