"""Status callbacks as Standard Webhooks, checked by receivers on real sockets that verify with
the reference ``standardwebhooks`` library: secret rotation, and tampering in transit."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from tests.integration.callbacks.harness import (
    SECRET,
    callback_worker,
    event_rows,
    gateway,
    report,
    sent_message,
)
from tests.support.live_server import live_server
from tests.support.polling import wait_until
from tests.support.receiver import ReceivedRequest, WebhookReceiver, standard_webhooks_check

pytestmark = pytest.mark.asyncio

NEW_SECRET = "whsec_" + base64.b64encode(b"the-rotated-in-callback-secret!!").decode()
STRANGER = "whsec_" + base64.b64encode(b"a-secret-the-gateway-never-had!!").decode()


async def test_during_a_rotation_receivers_with_the_old_or_the_new_secret_both_verify(
    database_url: str, api_key: str
) -> None:
    old_side = WebhookReceiver(check=standard_webhooks_check(SECRET))
    new_side = WebhookReceiver(check=standard_webhooks_check(NEW_SECRET))
    stranger = WebhookReceiver(check=standard_webhooks_check(STRANGER))
    rotating = (NEW_SECRET, SECRET)
    async with (
        live_server(old_side) as old_url,
        live_server(new_side) as new_url,
        live_server(stranger) as stranger_url,
        gateway(database_url, api_key, callback_signing_secrets=list(rotating)) as client,
    ):
        for url in (old_url, new_url, stranger_url):
            await sent_message(client, database_url, callback_url=f"{url}/hooks")
        async with callback_worker(database_url, secrets=rotating):
            (to_old,) = await old_side.wait_for(1)
            (to_new,) = await new_side.wait_for(1)
            # A receiver holding neither secret refuses (401), so the event is tried again.
            refused = await stranger.wait_for(2)
    assert (to_old.verified, to_old.answered) == (True, 200)
    assert (to_new.verified, to_new.answered) == (True, 200)
    assert len(to_old.headers["webhook-signature"].split(" ")) == 2
    assert [(r.verified, r.answered) for r in refused] == [(False, 401), (False, 401)]


async def test_after_a_rotation_only_the_new_secret_verifies(
    database_url: str, api_key: str
) -> None:
    old_side = WebhookReceiver(check=standard_webhooks_check(SECRET))
    new_side = WebhookReceiver(check=standard_webhooks_check(NEW_SECRET))
    async with (
        live_server(old_side) as old_url,
        live_server(new_side) as new_url,
        gateway(database_url, api_key, callback_signing_secrets=[NEW_SECRET]) as client,
    ):
        stale_id, _ = await sent_message(client, database_url, callback_url=f"{old_url}/hooks")
        await sent_message(client, database_url, callback_url=f"{new_url}/hooks")
        async with callback_worker(database_url, secrets=(NEW_SECRET,)):
            (to_new,) = await new_side.wait_for(1)
            (to_old,) = await old_side.wait_for(1)
            await wait_until(
                lambda: _attempts_at_least(database_url, stale_id, 2),
                message="the refused event retried",
            )
    assert (to_new.verified, to_new.answered) == (True, 200)
    assert (to_old.verified, to_old.answered) == (False, 401)


async def test_anything_changed_in_transit_fails_verification(
    database_url: str, api_key: str
) -> None:
    receiver = WebhookReceiver(check=standard_webhooks_check(SECRET))
    async with live_server(receiver) as url, gateway(database_url, api_key) as client:
        message_id, batch = await sent_message(client, database_url, callback_url=f"{url}/h")
        await report(client, batch, message_id, "Delivered", 0, "2026-11-26T10:02:42Z")
        async with callback_worker(database_url):
            _, delivered = await receiver.wait_for(2)
    assert delivered.verified
    webhook = Webhook(SECRET)
    payload = webhook.verify(delivered.body, delivered.headers)
    assert payload["status"] == "delivered"
    assert payload["id"] == delivered.headers["webhook-id"]
    assert abs(int(delivered.headers["webhook-timestamp"]) - time.time()) < 60

    forged_body = delivered.body.replace(b'"delivered"', b'"failed"', 1)
    assert forged_body != delivered.body
    other_event = _with(delivered, **{"webhook-id": "0b6c3c1e-5d7e-4a8f-9b2a-1c3d4e5f6a7b"})
    later = _with(delivered, **{"webhook-timestamp": str(int(time.time()) + 1)})
    replayed_late = _with(delivered, **{"webhook-timestamp": str(int(time.time()) - 3600)})
    unsigned = {k: v for k, v in delivered.headers.items() if k != "webhook-signature"}
    for body, headers in [
        (forged_body, delivered.headers),
        (delivered.body, other_event),
        (delivered.body, later),
        (delivered.body, replayed_late),
        (delivered.body, unsigned),
    ]:
        with pytest.raises(WebhookVerificationError):
            webhook.verify(body, headers)


def _with(request: ReceivedRequest, **changed: str) -> dict[str, str]:
    return {**request.headers, **changed}


async def _attempts_at_least(database_url: str, message_id: str, count: int) -> bool:
    rows = await event_rows(database_url, message_id)
    return bool(rows) and rows[0]["attempts"] >= count
