"""The raw transport on uvloop, the loop the gateway runs on (the other tests use asyncio's)."""

from __future__ import annotations

import httpx
import uvloop

from smsgateway.sinch import RawTransport
from tests.integration.sinch.raw_server import answer_all, raw_server


def test_exchanges_run_on_uvloop_and_keep_their_connection() -> None:
    async def exchange() -> tuple[list[int], int]:
        async with (
            raw_server(answer_all) as server,
            httpx.AsyncClient(transport=RawTransport(2), timeout=2) as http,
        ):
            answers = [await http.post(server.base_url + "/batches", json={}) for _ in range(3)]
            return [answer.status_code for answer in answers], server.connections

    statuses, connections = uvloop.run(exchange())

    assert statuses == [200, 200, 200]
    assert connections == 1
