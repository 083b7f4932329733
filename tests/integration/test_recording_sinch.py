"""The recording stand-in for Sinch answers as Sinch does, checked with our own Sinch client."""

from __future__ import annotations

import httpx
import pytest

from smsgateway.sinch import (
    NO_RETRY,
    SinchClient,
    SinchRejected,
    SinchUnauthorized,
)
from smsgateway.sinch.models import SendBatchRequest
from tests.support.recording_sinch import RecordingSinch, running_recording_sinch

pytestmark = pytest.mark.asyncio


def client_for(
    http: httpx.AsyncClient,
    sinch: RecordingSinch,
    *,
    token: str | None = None,
    plan: str | None = None,
) -> SinchClient:
    return SinchClient.for_api_token(
        http,
        service_plan_id=plan or sinch.plan_id,
        api_token=token or sinch.token,
        base_url=sinch.base_url,
        retry_policy=NO_RETRY,
    )


async def test_a_batch_with_from_is_stored_listed_and_recorded() -> None:
    async with running_recording_sinch() as sinch, httpx.AsyncClient() as http:
        client = client_for(http, sinch)
        sent = await client.send_batch(
            SendBatchRequest(
                to=["+46701234567"], from_="+12025550123", body="Hej", client_reference="ref-1"
            )
        )
        page = await client.list_batches(page_size=1, client_reference="ref-1")
        fetched = await client.get_batch(sent.id)
    assert len(sent.id) == 26
    assert fetched.id == sent.id
    assert (page.count, page.page_size, [b.id for b in page.batches]) == (1, 1, [sent.id])
    [posted] = sinch.sent_batches()
    assert posted["from"] == "+12025550123"
    assert [(r.method, r.route, r.status) for r in sinch.recorded()] == [
        ("POST", "/batches", 201),
        ("GET", "/batches", 200),
        ("GET", f"/batches/{sent.id}", 200),
    ]


async def test_a_batch_without_from_is_refused_but_recorded() -> None:
    async with running_recording_sinch() as sinch, httpx.AsyncClient() as http:
        with pytest.raises(SinchRejected) as refused:
            await client_for(http, sinch).send_batch(
                SendBatchRequest(to=["+46701234567"], body="Hej")
            )
    assert (refused.value.status, refused.value.code) == (400, "syntax_constraint_violation")
    assert sinch.sent_batches() == [{"type": "mt_text", "to": ["+46701234567"], "body": "Hej"}]


async def test_a_declared_default_originator_fills_in_from() -> None:
    async with (
        running_recording_sinch(default_originator="+15550009999") as sinch,
        httpx.AsyncClient() as http,
    ):
        sent = await client_for(http, sinch).send_batch(
            SendBatchRequest(to=["+46701234567"], body="Hej")
        )
    assert sent.from_ == "+15550009999"


@pytest.mark.parametrize(("token", "plan"), [("wrong", None), (None, "other-plan")])
async def test_a_wrong_token_or_plan_is_401(token: str | None, plan: str | None) -> None:
    async with running_recording_sinch() as sinch, httpx.AsyncClient() as http:
        with pytest.raises(SinchUnauthorized):
            await client_for(http, sinch, token=token, plan=plan).list_batches(page_size=1)
    [request] = sinch.recorded()
    assert request.status == 401


async def test_a_scripted_answer_comes_once_then_the_usual_one() -> None:
    async with running_recording_sinch() as sinch, httpx.AsyncClient() as http:
        sinch.answer("POST", "/batches", 403, {"code": "blocked_account", "text": "Blocked."})
        client = client_for(http, sinch)
        batch = SendBatchRequest(to=["+46701234567"], from_="ACME", body="Hej")
        with pytest.raises(SinchRejected) as refused:
            await client.send_batch(batch)
        second = await client.send_batch(batch)
    assert (refused.value.status, refused.value.code) == (403, "blocked_account")
    assert second.from_ == "ACME"
    assert [r.status for r in sinch.recorded("POST", "/batches")] == [403, 201]
