"""Scale-out as deployed: two ``smsgateway serve`` processes (dispatch off) take the messages and
two ``smsgateway worker`` processes send them, all on one database. Every message reaches the
simulator exactly once, both workers share the sending, and the global send cap holds across
them (measured on the simulator's own clock: when each batch arrived)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.support.polling import wait_until
from tests.support.processes import (
    REPO_ROOT,
    free_port,
    gateway_environment,
    start_gateway,
    stop_gateway,
    wait_until_ready,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

PLAN_ID = "simulator-plan"
TOKEN = "simulator-token"
MESSAGES = 120
# Messages per second across both workers; the bucket holds one second's worth.
SEND_CAP = 25
BURST = SEND_CAP
# The cap is applied when a worker reserves its tokens (Postgres's clock); the simulator stamps
# a batch when the request arrives, a little later and not always equally later. Two sends
# reserved 40 ms apart may arrive together: each window gets this much slack on each side.
ARRIVAL_JITTER_S = 0.05


async def test_two_apis_and_two_workers_send_each_message_once_within_the_cap(
    database_url: str, tmp_path: Path
) -> None:
    simulator_port = free_port()
    simulator_url = f"http://127.0.0.1:{simulator_port}"
    api_ports = [free_port(), free_port()]
    common = gateway_environment(
        DATABASE_URL=database_url,
        SINCH_BASE_URL=simulator_url,
        SINCH_SERVICE_PLAN_ID=PLAN_ID,
        SINCH_API_TOKEN=TOKEN,
        SINCH_NUMBER="+12025550123",
        SMSGW_SINCH_SIMULATOR="off",
        # A "real" account on loopback: say so, or the gateway refuses to go live.
        PUBLIC_BASE_URL=f"http://127.0.0.1:{api_ports[0]}",
        SMSGW_ALLOW_PRIVATE_PUBLIC_BASE_URL="true",
        SMSGW_SEND_RATE_PER_SECOND=str(SEND_CAP),
        SMSGW_DISPATCH_POLL_SECONDS="0.05",
        # Small claims, so that one worker cannot hold the whole backlog while it waits for
        # the cap, and both get their share.
        SMSGW_DISPATCH_BATCH_SIZE="5",
        SMSGW_DISPATCH_CONCURRENCY="5",
        SMSGW_LOG_LEVEL="WARNING",
    )
    processes: list[subprocess.Popen[bytes]] = []
    try:
        simulator_log = tmp_path / "simulator.log"
        simulator_args = ["simulator", "--port", str(simulator_port)]
        simulator = start_gateway(simulator_args, common, simulator_log)
        processes.append(simulator)
        await asyncio.to_thread(_wait_for_simulator, simulator_url, simulator, simulator_log)
        key = await asyncio.to_thread(_create_api_key, common)

        api_urls = [f"http://127.0.0.1:{port}" for port in api_ports]
        apis = []
        for index, port in enumerate(api_ports):
            environment = {**common, "PORT": str(port), "SMSGW_DISPATCHER": "off"}
            apis.append(start_gateway(["serve"], environment, tmp_path / f"api-{index}.log"))
        processes.extend(apis)
        await asyncio.gather(
            *(
                asyncio.to_thread(wait_until_ready, url, api, 60, tmp_path / f"api-{index}.log")
                for index, (url, api) in enumerate(zip(api_urls, apis, strict=True))
            )
        )
        for index in range(2):
            processes.append(start_gateway(["worker"], common, tmp_path / f"worker-{index}.log"))

        accepted = await _post_through_both(api_urls, key)
        assert len(accepted) == MESSAGES

        connection = await asyncpg.connect(database_url)
        try:
            await _wait_until_sent(connection, accepted)
            workers = await connection.fetch(
                "SELECT detail->>'worker' AS worker, count(*) AS sent FROM sms_event"
                " WHERE kind = 'submitted' GROUP BY 1"
            )
        finally:
            await connection.close()

        async with httpx.AsyncClient(base_url=simulator_url, timeout=10) as sinch:
            stats = (await sinch.get("/_admin/stats")).json()
            arrivals = await _arrival_times(sinch, accepted)
        for process in processes[1:]:
            assert stop_gateway(process) == 0
    finally:
        for process in reversed(processes):
            _end(process)

    assert stats["batches_by_client_reference"] == dict.fromkeys(accepted, 1)
    assert stats["batches"] == MESSAGES
    assert len(workers) == 2, f"both workers send: {[dict(row) for row in workers]}"
    assert sum(row["sent"] for row in workers) == MESSAGES
    _assert_within_cap(sorted(arrivals))


def _assert_within_cap(arrivals: list[float]) -> None:
    """No window of time saw more batches than the bucket allows: its burst plus the refill."""
    worst = 0.0
    for first in range(len(arrivals)):
        for last in range(first, len(arrivals)):
            spread = arrivals[last] - arrivals[first] + 2 * ARRIVAL_JITTER_S
            allowed = BURST + SEND_CAP * spread
            worst = max(worst, (last - first + 1) - allowed)
    assert worst <= 1.0, f"{worst:.1f} batches over the cap in some window"
    # And the cap did bind: sending all took about as long as it allows, not less.
    assert arrivals[-1] - arrivals[0] >= (len(arrivals) - BURST) / SEND_CAP - 0.5


async def _post_through_both(api_urls: list[str], key: str) -> set[str]:
    """Posts MESSAGES messages, alternating between the two API processes, a few at a time."""
    accepted: set[str] = set()
    clients = [
        httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, timeout=10) for url in api_urls
    ]
    limit = asyncio.Semaphore(8)

    async def post(index: int) -> None:
        body = {
            "to": ["+46701234567"],
            "body": f"scale-out {index} {uuid.uuid4().hex[:8]}",
            "delivery_report": "none",
        }
        async with limit:
            response = await clients[index % 2].post("/v1/messages", json=body)
        assert response.status_code == 202, response.text
        accepted.add(response.json()["id"])

    try:
        await asyncio.gather(*(post(index) for index in range(MESSAGES)))
    finally:
        for client in clients:
            await client.aclose()
    return accepted


async def _wait_until_sent(connection: asyncpg.Connection, accepted: set[str]) -> None:
    ids = [uuid.UUID(message_id) for message_id in accepted]

    async def sent() -> bool:
        unsent = await connection.fetchval(
            "SELECT count(*) FROM sms_log WHERE id = ANY($1::uuid[]) AND sinch_batch_id IS NULL",
            ids,
        )
        return unsent == 0 and await connection.fetchval("SELECT count(*) FROM outbox") == 0

    # At the cap, MESSAGES take about MESSAGES / SEND_CAP seconds.
    await wait_until(sent, timeout_s=60, interval_s=0.1, message="every message sent")


async def _arrival_times(sinch: httpx.AsyncClient, accepted: set[str]) -> list[float]:
    """When the simulator created each message's batch (its created_at), in epoch seconds."""
    limit = asyncio.Semaphore(16)

    async def arrival(message_id: str) -> float:
        async with limit:
            found = await sinch.get("/_admin/batches", params={"client_reference": message_id})
            (batch_id,) = found.json()["batch_ids"]
            batch = await sinch.get(
                f"/xms/v1/{PLAN_ID}/batches/{batch_id}",
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
        batch.raise_for_status()
        return datetime.fromisoformat(batch.json()["created_at"]).timestamp()

    return list(await asyncio.gather(*(arrival(message_id) for message_id in accepted)))


def _wait_for_simulator(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, log.read_text()
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/_admin/health", timeout=1).status_code == 200:
                return
        assert time.monotonic() < deadline, "the simulator did not answer in 30 s"
        time.sleep(0.05)


def _create_api_key(environment: dict[str, str]) -> str:
    result = subprocess.run(
        [
            *(sys.executable, "-m", "smsgateway", "apikey", "create"),
            *("--name", "scale-out", "--rate", "1000000/second"),
        ],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[0]


def _end(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        stop_gateway(process, deadline_seconds=10)
