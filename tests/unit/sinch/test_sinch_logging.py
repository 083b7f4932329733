"""No token or key secret ever reaches a log line, and our own lines mask recipients."""

from __future__ import annotations

import logging

import httpx
import pytest

from smsgateway.sinch.auth import OAuth2ClientCredentials
from smsgateway.sinch.client import SinchClient
from smsgateway.sinch.errors import SinchError
from smsgateway.sinch.models import SendBatchRequest
from smsgateway.sinch.retry import RetryPolicy
from tests.unit.sinch.fakes import API_TOKEN, BATCH_ID, BATCHES_PATH, FakeTime, batch_json

RECIPIENT = "+15551230001"
ACCESS_TOKEN = "oauth-ACCESS-token-must-not-leak"
KEY_SECRET = "key-SECRET-must-not-leak"


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    lines = [caplog.text]
    for record in caplog.records:
        lines.append(record.getMessage())
        lines.append(repr(record.args))
        if record.exc_info and record.exc_info[1] is not None:
            lines.append(repr(record.exc_info[1]))
    return "\n".join(lines)


@pytest.mark.asyncio
async def test_api_token_and_recipients_stay_out_of_logs(
    make_client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    recipient_path = f"{BATCHES_PATH}/{BATCH_ID}/delivery_report/{RECIPIENT}"
    answers = {
        ("POST", BATCHES_PATH): [
            httpx.Response(503),
            httpx.Response(429, headers={"Retry-After": "1"}),
            httpx.Response(400, json={"code": "x", "text": f"bad recipient {RECIPIENT}"}),
        ],
        ("GET", BATCHES_PATH): [
            httpx.Response(200, json={"count": 0, "page": 0, "page_size": 1, "batches": []})
        ],
        ("GET", recipient_path): [httpx.Response(404, text=f"no report for {RECIPIENT}")],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        queue = answers[(request.method, request.url.path)]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    client = make_client(handler)
    batch = SendBatchRequest(to=[RECIPIENT], body="hello", client_reference="msg_1")

    with pytest.raises(SinchError) as sent:
        await client.send_batch(batch)
    with pytest.raises(SinchError) as reported:
        await client.recipient_delivery_report(BATCH_ID, RECIPIENT)

    logged = everything_logged(caplog)
    assert API_TOKEN not in logged
    ours = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith("smsgateway.sinch")
    )
    assert ours, "the client should have logged its retries and exchanges"
    assert RECIPIENT not in ours
    assert "+1555***0001" in ours
    assert RECIPIENT not in str(sent.value)
    assert RECIPIENT not in str(reported.value)
    assert API_TOKEN not in repr(client)


@pytest.mark.asyncio
async def test_oauth_tokens_and_secrets_stay_out_of_logs(
    caplog: pytest.LogCaptureFixture, fake_time: FakeTime
) -> None:
    caplog.set_level(logging.DEBUG)
    issued = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal issued
        if request.url.host == "auth.sinch.com":
            issued += 1
            return httpx.Response(
                200, json={"access_token": f"{ACCESS_TOKEN}-{issued}", "expires_in": 3600}
            )
        if request.headers["authorization"].endswith("-1"):
            return httpx.Response(401, headers={"www-authenticate": 'Bearer error="expired"'})
        return httpx.Response(200, json=batch_json())

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        auth = OAuth2ClientCredentials(
            http, key_id="kid", key_secret=KEY_SECRET, clock=fake_time.clock
        )
        client = SinchClient(
            http,
            base_url="https://zt.us.sms.api.sinch.com",
            path_id="proj",
            auth=auth,
            retry_policy=RetryPolicy(clock=fake_time.clock, sleep=fake_time.sleep),
        )
        await client.get_batch(BATCH_ID)

    logged = everything_logged(caplog)
    assert issued == 2
    assert ACCESS_TOKEN not in logged
    assert KEY_SECRET not in logged
    assert KEY_SECRET not in repr(client)


@pytest.mark.asyncio
async def test_a_malformed_token_answer_does_not_quote_the_token(fake_time: FakeTime) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"access_token": ACCESS_TOKEN, "expires_in": "soon"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        auth = OAuth2ClientCredentials(http, key_id="kid", key_secret=KEY_SECRET)
        with pytest.raises(SinchError) as caught:
            await auth.access_token()

    assert ACCESS_TOKEN not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
