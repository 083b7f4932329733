"""A claim survives a Postgres crash, even on the dispatcher's pool whose commits do not wait
for the disk: its attempt count is what makes the next attempt look the send up at Sinch."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import asyncpg
import psutil
import pytest

from smsgateway.store import outbox
from smsgateway.store.embedded import start_embedded_postgres
from smsgateway.store.pool import create_pool
from smsgateway.store.schema import upgrade_to_head
from tests.integration.dispatch.accepted import insert_accepted
from tests.support.settings import MIGRATIONS_DIR

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]


async def test_a_claim_is_not_lost_when_postgres_crashes_right_after_it(tmp_path: Path) -> None:
    server = await asyncio.to_thread(start_embedded_postgres, tmp_path)
    try:
        await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, server.dsn)
        setup = await asyncpg.connect(server.dsn)
        try:
            # The WAL writer would otherwise flush an asynchronous commit within 200 ms.
            await setup.execute("ALTER SYSTEM SET wal_writer_delay = '10s'")
            await setup.execute("SELECT pg_reload_conf()")
            message_id = await insert_accepted(setup)
            await setup.execute("CHECKPOINT")
        finally:
            await setup.close()

        pool = await create_pool(
            server.dsn,
            min_size=1,
            max_size=1,
            command_timeout=10,
            connect_timeout=5,
            durable_commits=False,
        )
        try:
            async with pool.acquire() as connection:
                [claim] = await outbox.claim_due(connection, 10, 60.0, "worker-that-sends")
        finally:
            pool.terminate()
        assert claim.attempts == 1

        # Postgres dies at once (SIGQUIT: no flush, as a power cut would leave it).
        postmaster = psutil.Process(
            int((tmp_path / "pgdata" / "postmaster.pid").read_text().split()[0])
        )
        os.kill(postmaster.pid, signal.SIGQUIT)
        await asyncio.to_thread(postmaster.wait, 30)
        # This process's handle still believes the old server runs; have it start a new one
        # (crash recovery replays what reached the WAL on disk).
        await asyncio.to_thread(server._server.ensure_postgres_running)

        check = await asyncpg.connect(server.dsn)
        try:
            attempts = await check.fetchval(
                "SELECT attempts FROM outbox WHERE message_id = $1", message_id
            )
        finally:
            await check.close()
        assert attempts == 1
    finally:
        await asyncio.to_thread(server.stop)
