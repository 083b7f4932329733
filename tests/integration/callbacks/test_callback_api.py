"""The callback API: target checks at accept, listing attempts, replay, tenant isolation, and
an API key's default callback URL."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from smsgateway.api.outgoing_webhooks import RecipientStatusChanged
from smsgateway.services.api_keys import InvalidCallbackUrlError, create_api_key
from tests.integration.callbacks.harness import (
    callback_worker,
    event_rows,
    gateway,
    report,
    sent_message,
)
from tests.support.polling import wait_until
from tests.support.receiver import WebhookReceiver

pytestmark = pytest.mark.asyncio

Receiver = tuple[WebhookReceiver, str]
# A gateway on a real Sinch account (so private targets are not implied by the simulator).
STRICT = {
    "callback_allow_private_targets": False,
    "sinch_simulator": "off",
    "sinch_service_plan_id": "plan",
    "sinch_api_token": "token",
}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hook",
        "http://10.1.2.3/hook",
        "https://192.168.1.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://localhost:8080/hook",
        "http://api.localhost/hook",
        "http://0.0.0.0/hook",
    ],
)
async def test_private_and_loopback_targets_are_refused_at_accept(
    database_url: str, api_key: str, url: str
) -> None:
    async with gateway(database_url, api_key, **STRICT) as client:
        response = await client.post(
            "/v1/messages", json={"to": ["+46701234567"], "body": "Hi", "callback_url": url}
        )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "callback_target_private"
    assert problem["errors"][0]["field"] == "body.callback_url"


async def test_public_targets_are_accepted_and_private_ones_when_allowed(
    database_url: str, api_key: str
) -> None:
    async with gateway(database_url, api_key, **STRICT) as client:
        response = await client.post(
            "/v1/messages",
            json={"to": ["+46701234567"], "body": "Hi", "callback_url": "https://example.com/h"},
        )
        assert response.status_code == 202, response.text
    allowed = {**STRICT, "callback_allow_private_targets": True}
    async with gateway(database_url, api_key, **allowed) as client:
        response = await client.post(
            "/v1/messages",
            json={"to": ["+46701234567"], "body": "Hi", "callback_url": "http://127.0.0.1:1/h"},
        )
        assert response.status_code == 202, response.text


async def test_without_a_signing_secret_a_callback_url_is_refused(
    database_url: str, api_key: str
) -> None:
    async with gateway(database_url, api_key, callback_signing_secrets=[]) as client:
        response = await client.post(
            "/v1/messages",
            json={"to": ["+46701234567"], "body": "Hi", "callback_url": "https://example.com/h"},
        )
        plain = await client.post("/v1/messages", json={"to": ["+46701234567"], "body": "Hi"})
    assert response.status_code == 422
    assert response.json()["code"] == "callbacks_not_configured"
    assert plain.status_code == 202


async def test_attempts_are_listed_and_an_event_can_be_replayed(
    database_url: str, api_key: str, other_api_key: str, receiver: Receiver
) -> None:
    recorder, base_url = receiver
    async with gateway(database_url, api_key) as client:
        message_id, batch = await sent_message(
            client, database_url, callback_url=f"{base_url}/hooks/replay"
        )
        await report(client, batch, message_id, "Delivered", 0, "2026-11-26T10:02:42Z")
        async with callback_worker(database_url):
            await recorder.wait_for(2, path="/hooks/replay")
            await wait_until(
                lambda: _delivered(database_url, message_id, [1, 1]), message="delivered once"
            )
            items = (await client.get(f"/v1/messages/{message_id}/callbacks")).json()["items"]
            assert [item["payload"]["status"] for item in items] == ["submitted", "delivered"]
            event = items[1]
            assert event["status"] == "delivered"
            assert event["attempt_log"][0]["outcome"] == "delivered"
            assert event["url"] == f"{base_url}/hooks/replay"
            assert event["payload"]["id"] == event["id"]
            # As the document's `webhooks` describe it.
            for item in items:
                RecipientStatusChanged.model_validate(item["payload"])
            event_id = event["id"]
            # Another tenant sees neither the message's callbacks nor can replay them.
            foreign = {"X-API-Key": other_api_key}
            hidden = await client.get(f"/v1/messages/{message_id}/callbacks", headers=foreign)
            assert hidden.status_code == 404
            replay_path = f"/v1/messages/{message_id}/callbacks/{event_id}/replay"
            assert (await client.post(replay_path, headers=foreign)).status_code == 404
            unknown = f"/v1/messages/{message_id}/callbacks/{uuid.uuid4()}/replay"
            assert (await client.post(unknown)).status_code == 404

            replayed = await client.post(replay_path)
            assert replayed.status_code == 202, replayed.text
            assert replayed.json() == {"id": event_id, "status": "pending"}
            requests = await recorder.wait_for(3, path="/hooks/replay")
            await wait_until(
                lambda: _delivered(database_url, message_id, [1, 2]), message="delivered again"
            )
        event = (await client.get(f"/v1/messages/{message_id}/callbacks")).json()["items"][1]
    # The same event: same webhook-id and body, so a receiver that keeps ids drops it.
    assert requests[1].headers["webhook-id"] == requests[2].headers["webhook-id"] == event_id
    assert requests[2].verified
    assert requests[1].body == requests[2].body
    assert event["replays"] == 1
    assert [a["outcome"] for a in event["attempt_log"]] == ["delivered", "delivered"]


async def test_a_pending_event_is_not_replayed(database_url: str, api_key: str) -> None:
    async with gateway(database_url, api_key) as client:
        message_id, batch = await sent_message(
            client, database_url, callback_url="http://127.0.0.1:9/never"
        )
        await report(client, batch, message_id, "Delivered", 0, "2026-11-26T10:02:42Z")
        row = (await event_rows(database_url, message_id))[-1]
        response = await client.post(f"/v1/messages/{message_id}/callbacks/{row['id']}/replay")
        empty = await client.get(f"/v1/messages/{message_id}/callbacks")
    assert response.status_code == 409
    assert response.json()["code"] == "callback_pending"
    assert empty.json()["items"][0]["status"] == "pending"


async def test_an_api_keys_default_callback_url_is_used(
    database_url: str, receiver: Receiver
) -> None:
    recorder, base_url = receiver
    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=1)
    try:
        with pytest.raises(InvalidCallbackUrlError):
            await create_api_key(pool, name="bad", callback_url="http://127.0.0.1/x")
        created = await create_api_key(
            pool,
            name="hooked",
            tenant="acme",
            callback_url=f"{base_url}/hooks/default",
            allow_private_callbacks=True,
        )
    finally:
        await pool.close()
    assert created.record.default_callback_url == f"{base_url}/hooks/default"
    async with gateway(database_url, created.key) as client:
        message_id, batch = await sent_message(client, database_url)
        await report(client, batch, message_id, "Delivered", 0, "2026-11-26T10:02:42Z")
        async with callback_worker(database_url):
            requests = await recorder.wait_for(2, path="/hooks/default")
    assert [r.json()["message_id"] for r in requests] == [message_id, message_id]
    assert [r.json()["status"] for r in requests] == ["submitted", "delivered"]


async def _delivered(database_url: str, message_id: str, attempts: list[int]) -> bool:
    """Whether every event is delivered, after ``attempts`` attempts each (in sequence)."""
    rows = await event_rows(database_url, message_id)
    return [row["status"] for row in rows] == ["delivered"] * len(attempts) and [
        row["attempts"] for row in rows
    ] == attempts
