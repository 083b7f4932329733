from __future__ import annotations

import json
import logging
import re

import pytest

from smsgateway.app import create_app
from smsgateway.observability.logging import JsonFormatter
from tests.support.asgi import lifespan_client
from tests.support.settings import make_settings

pytestmark = pytest.mark.asyncio


async def test_a_given_request_id_is_echoed(database_url: str) -> None:
    async with lifespan_client(create_app(make_settings(database_url))) as client:
        response = await client.get("/healthz", headers={"X-Request-ID": "caller-id.42"})
    assert response.headers["x-request-id"] == "caller-id.42"


async def test_a_missing_or_unsafe_request_id_is_replaced(database_url: str) -> None:
    async with lifespan_client(create_app(make_settings(database_url))) as client:
        generated = await client.get("/healthz")
        unsafe = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    for response in (generated, unsafe):
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    assert generated.headers["x-request-id"] != unsafe.headers["x-request-id"]


async def test_the_access_log_line_carries_request_id_route_status_and_duration(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with lifespan_client(create_app(make_settings(database_url))) as client:
        with caplog.at_level(logging.INFO, logger="smsgateway.access"):
            await client.get("/no-such-page", headers={"X-Request-ID": "trace-me"})
    [record] = [r for r in caplog.records if r.name == "smsgateway.access"]
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "trace-me"
    assert line["route"] == "<unmatched>"
    assert line["status"] == 404
    assert line["level"] == "info"
    assert line["duration_ms"] >= 0
