"""A tab in text: accepted by preview and send; UCS-2 as written, a space under smart encoding."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from smsgateway.app import create_app
from tests.support.api_keys import issue_api_key
from tests.support.asgi import lifespan_client
from tests.support.settings import make_settings

pytestmark = pytest.mark.asyncio

SE_MOBILE = "+46701234567"


@pytest_asyncio.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    key = await issue_api_key(database_url, name="tabs")
    async with lifespan_client(create_app(make_settings(database_url, dispatcher="off"))) as client:
        client.headers["X-API-Key"] = key
        yield client


async def test_preview_sends_a_tab_as_ucs2(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/messages/preview", json={"to": SE_MOBILE, "body": "Name:\tAnn"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["text"], body["encoding"], body["units"]) == ("Name:\tAnn", "UCS-2", 9)
    assert body["replacements"] == []


async def test_preview_with_smart_encoding_reports_the_tab_as_a_space(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/messages/preview",
        json={"to": SE_MOBILE, "body": "Name:\tAnn", "smart_encoding": True},
    )
    body = response.json()
    assert (body["text"], body["encoding"]) == ("Name: Ann", "GSM-7")
    assert body["replacements"] == [{"position": 5, "original": "\t", "replacement": " "}]


async def test_send_accepts_a_tab_and_other_controls_stay_refused(
    client: httpx.AsyncClient,
) -> None:
    accepted = await client.post("/v1/messages", json={"to": SE_MOBILE, "body": "a\tb"})
    assert accepted.status_code == 202, accepted.text
    assert (accepted.json()["body"], accepted.json()["encoding"]) == ("a\tb", "UCS-2")
    for control in ("\x00", "\x0b", "\x1b", "\x7f", "\x85"):
        refused = await client.post("/v1/messages", json={"to": SE_MOBILE, "body": f"a{control}b"})
        assert refused.status_code == 422
        assert refused.json()["code"] == "invalid_character"
