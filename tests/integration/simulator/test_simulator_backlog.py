"""The simulator stays responsive under its own callback backlog: 10,000 callbacks queued for a
slow receiver, a bounded number of POSTs in flight, and its health and API still answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from tests.support.polling import wait_until
from tests.support.simulator_process import simulator_process

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

PLAN, TOKEN = "backlog-plan", "backlog-token"
CONCURRENCY = 32  # the simulator's default callback_concurrency


class SlowReceiver:
    """A bare HTTP/1.1 server that takes 50 ms per request and counts how many are open."""

    def __init__(self) -> None:
        self.answered = 0
        self.in_flight = 0
        self.peak_in_flight = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                await reader.readexactly(length)
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                await asyncio.sleep(0.05)
                self.in_flight -= 1
                self.answered += 1
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def slow_receiver() -> AsyncIterator[tuple[SlowReceiver, str]]:
    receiver = SlowReceiver()
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield receiver, f"http://127.0.0.1:{port}/dlr"
    finally:
        server.close()


async def test_ten_thousand_queued_callbacks_leave_the_simulator_responsive() -> None:
    args = ["--service-plan-id", PLAN, "--api-token", TOKEN, "--default-from", "+15550009999"]
    args += ["--delivery-delay", "0.2", "--seed", "7"]
    async with slow_receiver() as (receiver, url):
        with simulator_process(args) as base_url:
            async with httpx.AsyncClient(base_url=base_url, timeout=5.0) as client:
                for batch in range(10):
                    sent = await client.post(
                        f"/xms/v1/{PLAN}/batches",
                        headers={"authorization": f"Bearer {TOKEN}"},
                        json={
                            "to": [f"+1201555{batch:01d}{n:03d}" for n in range(1000)],
                            "body": "backlog",
                            "delivery_report": "per_recipient_final",
                            "callback_url": url,
                        },
                    )
                    assert sent.status_code == 201, sent.text
                await wait_until(lambda: receiver.answered > 0, timeout_s=10, message="a callback")

                # While thousands wait, the simulator answers its health and its API at once.
                slowest = 0.0
                for _ in range(20):
                    started = time.monotonic()
                    health = await client.get("/_admin/health", timeout=2.0)
                    listed = await client.get(
                        f"/xms/v1/{PLAN}/batches",
                        params={"page_size": 1},
                        headers={"authorization": f"Bearer {TOKEN}"},
                        timeout=2.0,
                    )
                    slowest = max(slowest, time.monotonic() - started)
                    assert health.status_code == 200
                    assert listed.status_code == 200
                    await asyncio.sleep(0.05)
                backlog_left = 10_000 - receiver.answered

    assert backlog_left > 1_000, "the backlog must still be there while we probe"
    assert slowest < 1.0
    assert receiver.peak_in_flight <= CONCURRENCY
