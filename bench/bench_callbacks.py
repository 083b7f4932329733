"""Status callbacks: events delivered per second to a local receiver.

Usage: .venv/bin/python bench/bench_callbacks.py [--messages N] [--events-per-message E]
       [--concurrency C] [--per-host P] [--database-url URL]

Queues N x E callback events (E per message, delivered in order per message) in a fresh
database, starts a keep-alive HTTP receiver in its own process that answers 204 to every POST,
then runs one callback worker (claims with SKIP LOCKED, signs, POSTs, records each attempt)
until every event is delivered, and prints events/s. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import benchmark_database, free_port
from smsgateway.domain.backoff import BackoffPolicy
from smsgateway.domain.standard_webhooks import SigningSecret
from smsgateway.services.callbacks import CallbackDeliverer, CallbackPolicy
from smsgateway.sinch import ShardedTransport
from smsgateway.store.pool import create_pool
from smsgateway.store.schema import upgrade_to_head
from smsgateway.workers.callbacks import CallbackWorker, CallbackWorkerConfig

REPO = Path(__file__).resolve().parents[1]


class _Receiver(asyncio.Protocol):
    """Just enough HTTP/1.1: reads each request (Content-Length bodies) and answers 204."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            for line in self.buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self.transport.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")


def serve_receiver(port: int) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Receiver, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


async def queue_events(dsn: str, url: str, messages: int, per_message: int) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        now = datetime.now(UTC)
        ids = [uuid.uuid4() for _ in range(messages)]
        await connection.execute(
            "INSERT INTO sms_log (id, tenant, body, encoding, segment_count, character_count,"
            " recipient_count, status, created_at, updated_at)"
            " SELECT id, 'bench', 'hi', 'GSM-7', 1, 2, 1, 'delivered', $2, $2"
            " FROM unnest($1::uuid[]) AS t(id)",
            ids,
            now,
        )
        statuses = ["dispatched", "delivered", "delivered", "delivered"]
        records = []
        for message_id in ids:
            for sequence in range(1, per_message + 1):
                event_id = uuid.uuid4()
                payload = {
                    "id": str(event_id),
                    "type": "recipient.status_changed",
                    "message_id": str(message_id),
                    "client_reference": None,
                    "recipient": "+46701234567",
                    "status": statuses[min(sequence - 1, 3)],
                    "previous_status": "submitted",
                    "code": 0,
                    "status_at": now.isoformat(),
                    "operator_status_at": None,
                    "message_status": "delivered",
                    "sequence": sequence,
                    "created_at": now.isoformat(),
                }
                host = url.split("/")[2]
                records.append((event_id, message_id, sequence, url, host, json.dumps(payload)))
        await connection.copy_records_to_table(
            "callback_event",
            records=records,
            columns=["id", "message_id", "sequence", "url", "host", "payload"],
        )
        return len(records)
    finally:
        await connection.close()


async def measure(dsn: str, url: str, args: argparse.Namespace) -> None:
    total = await queue_events(dsn, url, args.messages, args.events_per_message)
    # As in the gateway: the worker runs on the dispatcher's pool (commits not waiting for disk).
    pool = await create_pool(
        dsn,
        min_size=0,
        max_size=10,
        command_timeout=10,
        connect_timeout=5,
        durable_commits=False,
    )
    http = httpx.AsyncClient(
        timeout=5.0,
        transport=ShardedTransport(max_connections=args.concurrency),
        follow_redirects=False,
        trust_env=False,
    )
    policy = CallbackPolicy(
        secrets=(SigningSecret(b"bench-callback-secret-32-bytes!!"),),
        allow_private=True,
        timeout_seconds=5.0,
        backoff=BackoffPolicy(base_delay=1.0, max_delay=10.0, max_age=timedelta(hours=1)),
    )
    config = CallbackWorkerConfig(
        concurrency=args.concurrency,
        per_host=args.per_host,
        batch_size=max(100, args.concurrency * 2),
        lease_seconds=60.0,
        poll_interval=0.05,
    )
    worker = CallbackWorker(pool, CallbackDeliverer(pool, http, policy, config.worker_id), config)
    started = time.perf_counter()
    cpu_before = time.process_time()
    running = asyncio.create_task(worker.run())
    delivered = 0
    try:
        while delivered < total:
            await asyncio.sleep(0.05)
            async with pool.acquire() as connection:
                delivered = await connection.fetchval(
                    "SELECT count(*) FROM callback_event WHERE status = 'delivered'"
                )
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
    finally:
        await worker.stop(5.0)
        await running
        await http.aclose()
        await pool.close()
    print(
        f"machine: {os.cpu_count()} cores; one callback worker (concurrency {args.concurrency}, "
        f"per host {args.per_host}); Postgres, worker and receiver on the same machine"
    )
    print(
        f"{total} events ({args.messages} messages x {args.events_per_message}, in order per "
        f"message) delivered in {elapsed:.2f} s: {total / elapsed:,.0f} events/s; "
        f"worker CPU {cpu / elapsed:.2f} cores"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--events-per-message", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--per-host", type=int, default=32)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    port = free_port()
    receiver = multiprocessing.Process(target=serve_receiver, args=(port,), daemon=True)
    receiver.start()
    try:
        with benchmark_database(args.database_url) as dsn:
            upgrade_to_head(REPO / "migrations", dsn)
            asyncio.run(measure(dsn, f"http://127.0.0.1:{port}/callbacks", args))
    finally:
        receiver.terminate()
        receiver.join(timeout=5)


if __name__ == "__main__":
    main()
