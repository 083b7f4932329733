"""OAuth2 client credentials against the simulator's token endpoint, over real sockets."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from smsgateway.sinch import RetryPolicy, SinchClient, SinchNotSent, SinchUnauthorized
from smsgateway.sinch.models import SendBatchRequest
from tests.integration.sinch.sinch_live import (
    OAUTH_KEY_ID,
    OAUTH_KEY_SECRET,
    OAUTH_PROJECT,
    RequestLog,
    closed_port,
    new_reference,
)
from tests.support.sinch_simulator import RunningSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

TOKEN_PATH = "/oauth2/token"


def oauth_client(
    http: httpx.AsyncClient,
    sim: RunningSimulator,
    policy: RetryPolicy,
    *,
    key_secret: str = OAUTH_KEY_SECRET,
    token_url: str | None = None,
) -> SinchClient:
    return SinchClient.for_oauth2(
        http,
        project_id=OAUTH_PROJECT,
        key_id=OAUTH_KEY_ID,
        key_secret=key_secret,
        base_url=sim.base_url,
        token_url=token_url or f"{sim.base_url}{TOKEN_PATH}",
        retry_policy=policy,
    )


def message() -> SendBatchRequest:
    return SendBatchRequest(to=["+15551230001"], body="hello", client_reference=new_reference())


async def test_one_token_serves_many_concurrent_calls(
    http: httpx.AsyncClient, sim: RunningSimulator, policy: RetryPolicy, request_log: RequestLog
) -> None:
    client = oauth_client(http, sim, policy)

    batches = await asyncio.gather(*(client.send_batch(message()) for _ in range(20)))

    assert len({batch.id for batch in batches}) == 20
    assert request_log.count("POST", TOKEN_PATH) == 1
    assert request_log.count("POST", f"/xms/v1/{OAUTH_PROJECT}/batches") == 20


async def test_an_expired_token_is_renewed_once_and_the_calls_retried(
    http: httpx.AsyncClient, sim: RunningSimulator, policy: RetryPolicy, request_log: RequestLog
) -> None:
    client = oauth_client(http, sim, policy)
    first = await client.send_batch(message())
    (await sim.client.post("/_admin/oauth/expire")).raise_for_status()

    # Every one of these meets the 401 `Bearer error="expired"`; one renewal serves them all.
    fetched = await asyncio.gather(*(client.get_batch(first.id) for _ in range(10)))

    assert {batch.id for batch in fetched} == {first.id}
    assert request_log.count("POST", TOKEN_PATH) == 2
    assert request_log.count("GET", f"/batches/{first.id}") == 20


async def test_a_send_with_an_expired_token_creates_one_batch(
    http: httpx.AsyncClient, sim: RunningSimulator, policy: RetryPolicy, request_log: RequestLog
) -> None:
    client = oauth_client(http, sim, policy)
    await client.send_batch(message())
    (await sim.client.post("/_admin/oauth/expire")).raise_for_status()
    second = message()

    batch = await client.send_batch(second)

    assert second.client_reference is not None
    assert await sim.batch_count(second.client_reference) == 1
    assert batch.client_reference == second.client_reference
    assert request_log.count("POST", TOKEN_PATH) == 2


async def test_wrong_client_credentials_are_unauthorized(
    http: httpx.AsyncClient, sim: RunningSimulator, policy: RetryPolicy, request_log: RequestLog
) -> None:
    client = oauth_client(http, sim, policy, key_secret="wrong")

    with pytest.raises(SinchUnauthorized) as caught:
        await client.send_batch(message())

    assert caught.value.status == 401
    assert caught.value.code == "invalid_client"
    assert caught.value.operation == "send_batch"
    assert request_log.count("POST", f"/xms/v1/{OAUTH_PROJECT}/batches") == 0


async def test_an_api_token_for_a_project_is_unauthorized(
    http: httpx.AsyncClient, sim: RunningSimulator, policy: RetryPolicy
) -> None:
    client = SinchClient.for_api_token(
        http,
        service_plan_id=OAUTH_PROJECT,
        api_token=sim.token,
        base_url=sim.base_url,
        retry_policy=policy,
    )

    with pytest.raises(SinchUnauthorized):
        await client.get_batch("01AAAAAAAAAAAAAAAAAAAAAAAA")


async def test_an_unreachable_token_endpoint_is_not_sent(
    http: httpx.AsyncClient, sim: RunningSimulator, policy: RetryPolicy, request_log: RequestLog
) -> None:
    client = oauth_client(
        http, sim, policy, token_url=f"http://127.0.0.1:{closed_port()}/oauth2/token"
    )

    with pytest.raises(SinchNotSent):
        await client.send_batch(message())

    assert request_log.count("POST", f"/xms/v1/{OAUTH_PROJECT}/batches") == 0
