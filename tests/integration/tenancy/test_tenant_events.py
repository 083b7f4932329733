"""A tenant's own events: ``message.inbound`` and ``opt_out.changed`` reach the tenant's
callback URL through the status callbacks' machinery (signed, ordered, replayable), and
nobody else's."""

from __future__ import annotations

from typing import Any

import pytest

from smsgateway.api.outgoing_webhooks import MessageInbound, OptOutChanged
from tests.integration.callbacks.harness import SECRET, callback_worker
from tests.integration.tenancy.harness import (
    ACME_NUMBER,
    GLOBEX_NUMBER,
    SUBSCRIBER,
    UNASSIGNED_NUMBER,
    served,
    set_tenant_callback,
)
from tests.support.live_server import live_server
from tests.support.polling import wait_until
from tests.support.receiver import WebhookReceiver, standard_webhooks_check

pytestmark = pytest.mark.asyncio


async def test_inbound_and_opt_out_events_reach_the_tenant_in_order_and_replay(
    database_url: str,
) -> None:
    recorder = WebhookReceiver()
    async with live_server(recorder) as hooks:
        await set_tenant_callback(database_url, "acme", f"{hooks}/acme")
        async with served(database_url) as gateway:
            await gateway.inbound(ACME_NUMBER, "STOP")
            # Globex has no callback URL, and an unassigned number has no tenant: no events.
            await gateway.inbound(GLOBEX_NUMBER, "STOP")
            await gateway.inbound(UNASSIGNED_NUMBER, "hello")
            async with callback_worker(database_url):
                inbound, opt_out = await recorder.wait_for(2, path="/acme")

                async def both_delivered() -> bool:
                    items = (await gateway.acme.get("/v1/events")).json()["items"]
                    return [item["status"] for item in items] == ["delivered", "delivered"]

                await wait_until(both_delivered, message="both events marked delivered")
                events: list[dict[str, Any]] = (await gateway.acme.get("/v1/events")).json()[
                    "items"
                ]
                assert (await gateway.globex.get("/v1/events")).json()["items"] == []
                first_id = events[-1]["id"]
                refused = await gateway.globex.post(f"/v1/events/{first_id}/replay")
                assert (refused.status_code, refused.json()["code"]) == (
                    404,
                    "callback_not_found",
                )
                replayed = await gateway.acme.post(f"/v1/events/{first_id}/replay")
                assert replayed.status_code == 202, replayed.text
                again = (await recorder.wait_for(3, path="/acme"))[2]
    assert len(recorder.requests) == 3

    verified = standard_webhooks_check(SECRET)
    for request in (inbound, opt_out, again):
        assert verified(request.body, request.headers)
    # The same event keeps its id on a replay, so receivers process it once.
    assert again.headers["webhook-id"] == inbound.headers["webhook-id"]
    first, second = inbound.json(), opt_out.json()
    # Each body is exactly what the document's `webhooks` say (no member more or less).
    MessageInbound.model_validate(first)
    OptOutChanged.model_validate(second)
    assert (first["type"], first["sequence"]) == ("message.inbound", 1)
    assert (second["type"], second["sequence"]) == ("opt_out.changed", 2)
    message = first["message"]
    assert (first["tenant"], message["sender"], message["to"], message["body"]) == (
        "acme",
        SUBSCRIBER,
        ACME_NUMBER,
        "STOP",
    )
    assert message["keyword"] == "opt_out"
    change = second["opt_out"]
    assert (change["msisdn"], change["opted_out"], change["sender"]) == (
        SUBSCRIBER,
        True,
        ACME_NUMBER,
    )
    assert change["inbound_id"] == message["id"]
    # A replay is the same event: same id, same bytes.
    assert (again.body, again.json()["id"]) == (inbound.body, first_id)
    assert [event["sequence"] for event in events] == [2, 1]
    OptOutChanged.model_validate(events[0]["payload"])
    MessageInbound.model_validate(events[1]["payload"])


async def test_an_opt_out_made_through_the_api_is_an_event_too(database_url: str) -> None:
    recorder = WebhookReceiver()
    async with live_server(recorder) as hooks:
        await set_tenant_callback(database_url, "acme", f"{hooks}/acme")
        async with served(database_url) as gateway:
            added = await gateway.acme.post("/v1/opt-outs", json={"msisdn": SUBSCRIBER})
            assert added.status_code == 201
            assert (await gateway.acme.delete(f"/v1/opt-outs/{SUBSCRIBER}")).status_code == 204
            async with callback_worker(database_url):
                out, back_in = await recorder.wait_for(2, path="/acme")
    assert [request.json()["opt_out"]["opted_out"] for request in (out, back_in)] == [True, False]
    assert {request.json()["opt_out"]["source"] for request in (out, back_in)} == {"api"}
