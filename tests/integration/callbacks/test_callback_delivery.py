"""Status callbacks end to end: a status change (the dispatcher handing a message to Sinch, a
delivery report) queues an event in the change's transaction, and the worker POSTs it, signed,
to a real receiver that verifies it with the ``standardwebhooks`` library. Every sent message's
first event is its ``submitted``."""

from __future__ import annotations

import time
import uuid

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from tests.integration.callbacks.harness import (
    SE,
    SECRET,
    US,
    callback_worker,
    event_rows,
    gateway,
    report,
    sent_message,
    silent_server,
)
from tests.integration.webhooks.harness import fetch
from tests.support.polling import wait_until
from tests.support.receiver import WebhookReceiver

pytestmark = pytest.mark.asyncio

Receiver = tuple[WebhookReceiver, str]


async def test_a_status_change_is_delivered_once_signed_with_its_event_id(
    database_url: str, api_key: str, receiver: Receiver
) -> None:
    recorder, base_url = receiver
    async with gateway(database_url, api_key) as client:
        message_id, batch = await sent_message(
            client, database_url, callback_url=f"{base_url}/hooks/sms", client_reference="o-1"
        )
        assert await report(client, batch, message_id, "Delivered", 0, "2026-11-26T10:02:42Z") == (
            "applied"
        )
        # The same report again changes nothing, so it queues nothing.
        assert await report(client, batch, message_id, "Delivered", 0, "2026-11-26T10:02:42Z") == (
            "duplicate"
        )
        assert len(await event_rows(database_url, message_id)) == 2
        async with callback_worker(database_url):
            submitted, delivered = await recorder.wait_for(2, path="/hooks/sms")
            await wait_until(
                lambda: _statuses(database_url, message_id, ["delivered", "delivered"]),
                message="events marked delivered",
            )
    for request in (submitted, delivered):
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/json"
        assert request.verified
        assert request.answered == 200
        with pytest.raises(WebhookVerificationError):
            Webhook(SECRET).verify(request.body + b" ", request.headers)
        assert "smsgateway-signature" not in request.headers
        body = request.json()
        assert request.headers["webhook-id"] == body["id"]
        uuid.UUID(str(body["id"]))
        assert body["type"] == "recipient.status_changed"
        assert body["message_id"] == message_id
        assert body["client_reference"] == "o-1"
        assert body["recipient"] == SE
        assert body["created_at"]
    first, second = submitted.json(), delivered.json()
    # The dispatcher's own change: no Sinch code or times.
    assert (first["status"], first["previous_status"], first["sequence"]) == (
        "submitted",
        "queued",
        1,
    )
    assert (first["code"], first["status_at"], first["operator_status_at"]) == (None, None, None)
    assert first["message_status"] == "submitted"
    assert second["status"] == "delivered"
    assert second["previous_status"] == "submitted"
    assert second["code"] == 0
    assert str(second["status_at"]).startswith("2026-11-26T10:02:42")
    assert second["message_status"] == "delivered"
    assert second["sequence"] == 2
    assert len(recorder.on("/hooks/sms")) == 2


async def test_a_receiver_failing_twice_gets_three_attempts_and_order_is_kept(
    database_url: str, api_key: str, receiver: Receiver
) -> None:
    recorder, base_url = receiver
    recorder.script("/hooks/flaky", 503, 503)
    async with gateway(database_url, api_key) as client:
        message_id, batch = await sent_message(
            client, database_url, callback_url=f"{base_url}/hooks/flaky"
        )
        await report(client, batch, message_id, "Dispatched", 401, "2026-11-26T10:02:41Z")
        await report(client, batch, message_id, "Delivered", 0, "2026-11-26T10:02:42Z")
        async with callback_worker(database_url):
            requests = await recorder.wait_for(5, path="/hooks/flaky")
            await wait_until(
                lambda: _statuses(database_url, message_id, ["delivered"] * 3),
                message="every event delivered",
            )
        listing = await client.get(f"/v1/messages/{message_id}/callbacks")
    # The later events waited behind the first one's retries.
    assert [r.json()["status"] for r in requests] == [
        "submitted",
        "submitted",
        "submitted",
        "dispatched",
        "delivered",
    ]
    assert [r.answered for r in requests] == [503, 503, 200, 200, 200]
    # One event, one webhook-id on every attempt; each attempt signed anew, and verified.
    assert {r.headers["webhook-id"] for r in requests[:3]} == {requests[0].json()["id"]}
    assert all(r.verified for r in requests)
    assert requests[0].body == requests[2].body  # the same bytes on every attempt
    assert listing.status_code == 200, listing.text
    first, second, third = listing.json()["items"]
    assert (first["sequence"], second["sequence"], third["sequence"]) == (1, 2, 3)
    assert first["attempts"] == 3
    assert [a["outcome"] for a in first["attempt_log"]] == ["retry", "retry", "delivered"]
    assert [a["status_code"] for a in first["attempt_log"]] == [503, 503, 200]
    assert second["attempts"] == third["attempts"] == 1
    assert second["status"] == third["status"] == "delivered"


async def test_a_hung_receiver_does_not_delay_other_messages(
    database_url: str, api_key: str, receiver: Receiver
) -> None:
    recorder, base_url = receiver
    async with gateway(database_url, api_key) as client, silent_server() as hung_url:
        stuck = [
            await sent_message(client, database_url, to=(number,), callback_url=f"{hung_url}/x")
            for number in (SE, US, "+12015550124")
        ]
        for message_id, batch in stuck:
            recipient = (await client.get(f"/v1/messages/{message_id}")).json()["recipients"][0]
            await report(
                client, batch, message_id, "Delivered", 0, "2026-11-26T10:02:42Z", recipient["to"]
            )
        healthy_id, healthy_batch = await sent_message(
            client, database_url, callback_url=f"{base_url}/hooks/ok"
        )
        await report(client, healthy_batch, healthy_id, "Delivered", 0, "2026-11-26T10:02:42Z")
        # Two slots, one per host: the hung host holds one until its 3 s timeout, never both.
        async with callback_worker(database_url, timeout_s=3.0, concurrency=2, per_host=1):
            started = time.monotonic()
            await recorder.wait_for(1, path="/hooks/ok", timeout_s=2.5)
            waited = time.monotonic() - started
            stuck_states = [await event_rows(database_url, m) for m, _ in stuck]
    assert waited < 2.5
    assert all(rows[0]["status"] == "pending" for rows in stuck_states)


async def test_an_event_is_failed_after_the_retry_horizon(
    database_url: str, api_key: str, receiver: Receiver
) -> None:
    recorder, base_url = receiver
    recorder.script("/hooks/down", *([500] * 200))
    async with gateway(database_url, api_key) as client:
        message_id, batch = await sent_message(
            client, database_url, callback_url=f"{base_url}/hooks/down"
        )
        await report(client, batch, message_id, "Failed", 402, "2026-11-26T10:02:42Z")
        async with callback_worker(database_url, max_age_s=0.5):
            await wait_until(
                lambda: _statuses(database_url, message_id, ["failed", "failed"]),
                timeout_s=15.0,
                message="events failed",
            )
        listing = (await client.get(f"/v1/messages/{message_id}/callbacks")).json()
    # The first (submitted) event was retried until its horizon; the report's waited behind it.
    event, behind = listing["items"]
    assert behind["status"] == "failed"
    assert event["payload"]["status"] == "submitted"
    assert event["status"] == "failed"
    assert event["failed_at"] is not None
    assert event["last_status_code"] == 500
    # How many tries fit in the horizon depends on how busy the machine is: at least the last.
    outcomes = [a["outcome"] for a in event["attempt_log"]]
    assert outcomes[-1] == "failed"
    assert set(outcomes[:-1]) <= {"retry"}


async def test_a_name_or_address_refused_at_delivery_is_not_called(
    database_url: str, api_key: str, receiver: Receiver
) -> None:
    recorder, base_url = receiver
    async with gateway(database_url, api_key) as client:
        # Accepted by a gateway that allows private targets; the worker does not.
        message_id, batch = await sent_message(
            client, database_url, callback_url=f"{base_url}/hooks/private"
        )
        await report(client, batch, message_id, "Delivered", 0, "2026-11-26T10:02:42Z")
        async with callback_worker(database_url, allow_private=False):
            await wait_until(
                lambda: _attempted(database_url, message_id),
                message="an attempt recorded",
            )
        listing = (await client.get(f"/v1/messages/{message_id}/callbacks")).json()
    event = listing["items"][0]
    assert event["attempt_log"][0]["status_code"] is None
    assert "refused" in event["attempt_log"][0]["error"]
    assert recorder.on("/hooks/private") == []


async def _statuses(database_url: str, message_id: str, expected: list[str]) -> bool:
    return [row["status"] for row in await event_rows(database_url, message_id)] == expected


async def _attempted(database_url: str, message_id: str) -> bool:
    rows = await fetch(
        database_url,
        "SELECT 1 FROM callback_attempt AS a JOIN callback_event AS e ON e.id = a.event_id"
        " WHERE e.message_id = $1",
        uuid.UUID(message_id),
    )
    return bool(rows)
