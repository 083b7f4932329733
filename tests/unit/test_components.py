"""The pooled Sinch HTTP client is built as the settings say: transport, limits, timeouts."""

from __future__ import annotations

import httpx
import pytest

from smsgateway.components import build_http_client
from smsgateway.sinch import AiohttpTransport, RawTransport, ShardedTransport
from tests.support.settings import make_settings

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_the_sinch_client_runs_on_the_raw_transport_by_default() -> None:
    settings = make_settings(
        sinch_max_connections=7,
        sinch_connect_timeout_seconds=1,
        sinch_read_timeout_seconds=2,
        sinch_write_timeout_seconds=3,
        sinch_pool_timeout_seconds=4,
    )

    async with build_http_client(settings) as http:
        transport = http._transport

    assert isinstance(transport, RawTransport)
    assert transport.max_connections == 7
    assert http.timeout == httpx.Timeout(connect=1, read=2, write=3, pool=4)


async def test_aiohttp_is_still_selectable() -> None:
    settings = make_settings(sinch_transport="aiohttp", sinch_max_connections=5)

    async with build_http_client(settings) as http:
        transport = http._transport

    assert isinstance(transport, AiohttpTransport)
    assert transport.max_connections == 5


async def test_httpx_is_still_selectable() -> None:
    settings = make_settings(sinch_transport="httpx", sinch_max_connections=16)

    async with build_http_client(settings) as http:
        transport = http._transport

    assert isinstance(transport, ShardedTransport)
    assert len(transport.in_flight) == 2  # 16 connections in pools of 8


async def test_serving_processes_collect_less_often_once_start_up_is_frozen() -> None:
    import gc

    from smsgateway.http_server import GC_THRESHOLDS, freeze_startup_heap

    before = gc.get_threshold()
    try:
        freeze_startup_heap()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
