"""The Sinch client on the raw transport with no event hooks (the gateway's own set-up) writes
its requests as bytes, skipping httpx's models: the same wire, the same answers and errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from smsgateway.sinch import (
    NO_RETRY,
    RawTransport,
    SinchClient,
    SinchNotSent,
    SinchRateLimited,
    SinchRejected,
    SinchUnauthorized,
)
from smsgateway.sinch.models import SendBatchRequest
from tests.integration.sinch.sinch_live import closed_port
from tests.support.recording_sinch import RecordingSinch, running_recording_sinch

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def sinch() -> AsyncIterator[RecordingSinch]:
    async with running_recording_sinch() as recording:
        yield recording


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=RawTransport(8), timeout=2) as client:
        yield client


def client_for(sinch: RecordingSinch, http: httpx.AsyncClient, token: str = "") -> SinchClient:
    return SinchClient.for_api_token(
        http,
        service_plan_id=sinch.plan_id,
        api_token=token or sinch.token,
        base_url=sinch.base_url,
        retry_policy=NO_RETRY,
    )


async def test_a_send_and_a_lookup_go_out_as_sinch_expects(
    sinch: RecordingSinch, http: httpx.AsyncClient
) -> None:
    client = client_for(sinch, http)
    batch = SendBatchRequest(
        to=["+46701234567"], body="Hej ✓", from_="+12025550123", client_reference="m 1&2"
    )

    sent = await client.send_batch(batch, request_id="rid-1")
    found = await client.find_batch("m 1&2")

    post, lookup = sinch.requests[-2:]
    assert (post.method, post.route, post.status) == ("POST", "/batches", 201)
    assert post.headers["authorization"] == f"Bearer {sinch.token}"
    assert post.headers["x-request-id"] == "rid-1"
    assert post.headers["content-type"] == "application/json"
    assert post.headers["host"] == sinch.base_url.removeprefix("http://")
    # Written by the direct route, not by httpx (whose User-Agent is python-httpx/...).
    assert post.headers["user-agent"].startswith("smsgateway/")
    assert {key: post.json[key] for key in ("to", "body", "from", "client_reference")} == {
        "to": ["+46701234567"],
        "body": "Hej ✓",
        "from": "+12025550123",
        "client_reference": "m 1&2",
    }
    assert (lookup.method, lookup.route, lookup.query["client_reference"]) == (
        "GET",
        "/batches",
        "m 1&2",
    )
    assert found is not None
    assert found.id == sent.id


async def test_error_answers_become_the_same_sinch_errors(
    sinch: RecordingSinch, http: httpx.AsyncClient
) -> None:
    client = client_for(sinch, http)
    batch = SendBatchRequest(to=["+46701234567"], body="x", from_="+12025550123")

    sinch.answer("POST", "/batches", 400, {"code": "syntax_constraint_violation", "text": "no"})
    with pytest.raises(SinchRejected) as rejected:
        await client.send_batch(batch)
    sinch.answer("POST", "/batches", 429, {"code": "too_many_requests", "text": "slow down"})
    with pytest.raises(SinchRateLimited):
        await client.send_batch(batch)
    with pytest.raises(SinchUnauthorized):
        await client_for(sinch, http, token="wrong").send_batch(batch)

    assert (rejected.value.status, rejected.value.code) == (400, "syntax_constraint_violation")


async def test_a_refused_connection_is_not_sent(http: httpx.AsyncClient) -> None:
    client = SinchClient.for_api_token(
        http,
        service_plan_id="plan",
        api_token="token",
        base_url=f"http://127.0.0.1:{closed_port()}",
        retry_policy=NO_RETRY,
    )
    with pytest.raises(SinchNotSent):
        await client.send_batch(SendBatchRequest(to=["+46701234567"], body="x"))
