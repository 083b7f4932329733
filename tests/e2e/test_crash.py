"""kill -9 the gateway while it dispatches under load, start it again: every message answered
202 reaches Sinch exactly once, and no stored message reaches it twice.

Everything runs as real processes: the simulator in its own process (so it outlives the
gateway and remembers every batch), and ``smsgateway serve`` twice on the same database.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.support.polling import wait_until
from tests.support.processes import (
    create_api_key,
    end_process,
    exit_report,
    free_port,
    gateway_environment,
    start_gateway,
    stop_gateway,
    wait_for_simulator,
    wait_until_ready,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

SIMULATOR_PLAN_ID = "simulator-plan"
SIMULATOR_TOKEN = "simulator-token"
# Every Sinch call takes this long, so that sends are in flight when the gateway dies.
SINCH_LATENCY_MS = 100
# A few sends reach Sinch and are never answered (the simulator records the batch, then
# hangs): they are surely under way when the gateway dies, and only a lookup finds them.
HUNG_SENDS = 8
# Few concurrent sends, so a backlog builds up while we post.
DISPATCH_CONCURRENCY = 32
POSTERS = 16
MAX_MESSAGES = 500
# Kill once this many messages are acknowledged (and some, not all, are sent).
KILL_AFTER_ACKNOWLEDGED = 300


@dataclass
class Load:
    """What the posters saw: ids answered 202, and requests that got anything else."""

    acknowledged: set[str] = field(default_factory=set)
    failed: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def test_a_killed_gateway_sends_every_acknowledged_message_exactly_once(
    database_url: str, tmp_path: Path
) -> None:
    simulator_port = free_port()
    simulator_url = f"http://127.0.0.1:{simulator_port}"
    gateway_port = free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    environment = gateway_environment(
        DATABASE_URL=database_url,
        PORT=str(gateway_port),
        SINCH_BASE_URL=simulator_url,
        SINCH_SERVICE_PLAN_ID=SIMULATOR_PLAN_ID,
        SINCH_API_TOKEN=SIMULATOR_TOKEN,
        SINCH_NUMBER="+12025550123",
        # Credentials are set: never start a simulator of its own beside the gateway.
        SMSGW_SINCH_SIMULATOR="off",
        # A "real" account on loopback: say so, or the gateway refuses to go live.
        PUBLIC_BASE_URL=gateway_url,
        SMSGW_ALLOW_PRIVATE_PUBLIC_BASE_URL="true",
        SMSGW_DISPATCH_LEASE_SECONDS="5",
        SMSGW_DISPATCH_POLL_SECONDS="0.05",
        SMSGW_DISPATCH_CONCURRENCY=str(DISPATCH_CONCURRENCY),
        SMSGW_LOG_LEVEL="WARNING",
    )
    simulator_log = tmp_path / "simulator.log"
    gateway_log = tmp_path / "gateway.log"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        simulator = start_gateway(
            ["simulator", "--port", str(simulator_port)], environment, simulator_log
        )
        processes.append(simulator)
        async with httpx.AsyncClient(base_url=simulator_url, timeout=5) as admin:
            await wait_for_simulator(admin, simulator, simulator_log)
            faults = {
                "latency_ms": SINCH_LATENCY_MS,
                "timeout_rate": 0.2,
                "max_faults": HUNG_SENDS,
                "scope": "send",
            }
            (await admin.put("/_admin/faults", json=faults)).raise_for_status()
            key = await create_api_key(environment)

            first = start_gateway(["serve"], environment, gateway_log)
            processes.append(first)
            await asyncio.to_thread(wait_until_ready, gateway_url, first, 30, gateway_log)

            load = Load()
            async with httpx.AsyncClient(
                base_url=gateway_url,
                headers={"X-API-Key": key},
                timeout=10,
                limits=httpx.Limits(max_connections=POSTERS),
            ) as client:
                posters = [
                    asyncio.create_task(_post_until_stopped(client, load)) for _ in range(POSTERS)
                ]
                try:
                    sent_at_kill, stored_at_kill = await _kill_mid_dispatch(
                        database_url, first, load, gateway_log
                    )
                finally:
                    load.stop.set()
                    await asyncio.gather(*posters)
            assert 0 < sent_at_kill < stored_at_kill, "the kill must come while dispatching"
            # From now on Sinch answers every call (slowly).
            faults = {"latency_ms": SINCH_LATENCY_MS, "scope": "all"}
            (await admin.put("/_admin/faults", json=faults)).raise_for_status()
            assert len(load.acknowledged) >= KILL_AFTER_ACKNOWLEDGED

            second = start_gateway(["serve"], environment, gateway_log)
            processes.append(second)
            await asyncio.to_thread(wait_until_ready, gateway_url, second, 30, gateway_log)

            connection = await asyncpg.connect(database_url)
            try:
                await _wait_until_dispatched(connection, load.acknowledged)
                outbox_left = await connection.fetchval("SELECT count(*) FROM outbox")
                recorded = {
                    str(row["id"]): row["sinch_batch_id"]
                    for row in await connection.fetch("SELECT id, sinch_batch_id FROM sms_log")
                }
                resolved_by_lookup = await connection.fetchval(
                    "SELECT count(*) FROM sms_event WHERE kind = 'submitted'"
                    " AND detail->>'resolved_by_lookup' = 'true'"
                )
            finally:
                await connection.close()

            stats = (await admin.get("/_admin/stats")).json()
            sent_by_reference: dict[str, int] = stats["batches_by_client_reference"]
            batch_ids = await _batch_ids(admin, load.acknowledged)
        assert stop_gateway(second) == 0, gateway_log.read_text()
    finally:
        for process in reversed(processes):
            end_process(process)

    twice = {reference: n for reference, n in sent_by_reference.items() if n != 1}
    assert twice == {}, "no message may reach Sinch more than once"
    assert set(sent_by_reference) == set(recorded), "every stored message, and no other, is sent"
    assert stats["batches"] == len(recorded)
    assert set(load.acknowledged) <= set(recorded)
    assert {
        message_id: ids for message_id, ids in batch_ids.items() if ids != [recorded[message_id]]
    } == {}, "each acknowledged message: one batch, the one recorded"
    # The hung sends (and any other the kill cut after Sinch took it) created batches the
    # gateway never heard of; a lookup found each instead of sending again.
    assert stats["faults_injected"] == {"timeout": HUNG_SENDS}
    assert resolved_by_lookup >= HUNG_SENDS
    assert outbox_left == 0


async def _post_until_stopped(client: httpx.AsyncClient, load: Load) -> None:
    """Posts messages one after another until told to stop or enough have been posted."""
    while not load.stop.is_set() and len(load.acknowledged) + len(load.failed) < MAX_MESSAGES:
        body = {
            "to": ["+46701234567"],
            "body": f"crash test {uuid.uuid4().hex[:8]}",
            "delivery_report": "none",
        }
        try:
            response = await client.post("/v1/messages", json=body)
        except httpx.TransportError as exc:
            # In flight when the gateway died: not acknowledged, so it need not be sent.
            load.failed.append(type(exc).__name__)
            return
        if response.status_code == 202:
            load.acknowledged.add(response.json()["id"])
        else:
            load.failed.append(f"{response.status_code} {response.text}")


async def _kill_mid_dispatch(
    database_url: str, gateway: subprocess.Popen[bytes], load: Load, log: Path
) -> tuple[int, int]:
    """SIGKILLs the gateway once enough messages are acknowledged and some, not all, are sent.

    Returns how many stored messages had a Sinch batch id, and how many were stored, just
    before the kill.
    """
    connection = await asyncpg.connect(database_url)
    try:
        counts: tuple[int, int] = (0, 0)

        async def mid_dispatch() -> bool:
            nonlocal counts
            if gateway.poll() is not None:
                raise AssertionError(exit_report("the gateway", gateway, log))
            row = await connection.fetchrow(
                "SELECT count(sinch_batch_id) AS sent, count(*) AS stored FROM sms_log"
            )
            assert row is not None
            counts = (row["sent"], row["stored"])
            return len(load.acknowledged) >= KILL_AFTER_ACKNOWLEDGED and 0 < counts[0] < counts[1]

        await wait_until(mid_dispatch, timeout_s=20, interval_s=0.005, message="mid-dispatch")
        os.kill(gateway.pid, signal.SIGKILL)
        await asyncio.to_thread(gateway.wait, 10)
        return counts
    finally:
        await connection.close()


async def _wait_until_dispatched(connection: asyncpg.Connection, acknowledged: set[str]) -> None:
    """Until every acknowledged message has its batch id and the outbox is empty."""
    ids = [uuid.UUID(message_id) for message_id in acknowledged]

    async def dispatched() -> bool:
        unsent = await connection.fetchval(
            "SELECT count(*) FROM sms_log WHERE id = ANY($1::uuid[]) AND sinch_batch_id IS NULL",
            ids,
        )
        outbox = await connection.fetchval("SELECT count(*) FROM outbox")
        return unsent == 0 and outbox == 0

    # Claims the dead gateway held come back when their 5 s lease ends.
    await wait_until(dispatched, timeout_s=30, interval_s=0.1, message="every message dispatched")


async def _batch_ids(admin: httpx.AsyncClient, message_ids: set[str]) -> dict[str, list[str]]:
    """The simulator's batch ids for each message id sent as client_reference."""
    limit = asyncio.Semaphore(16)

    async def lookup(message_id: str) -> tuple[str, list[str]]:
        async with limit:
            response = await admin.get("/_admin/batches", params={"client_reference": message_id})
        response.raise_for_status()
        return message_id, response.json()["batch_ids"]

    return dict(await asyncio.gather(*(lookup(message_id) for message_id in message_ids)))
