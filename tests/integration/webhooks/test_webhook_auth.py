"""Authenticating Sinch's webhook calls: HMAC signature, HTTP Basic and the path secret; a
correctly signed call is never refused for its age or nonce (counted instead)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from smsgateway.app import create_app
from smsgateway.components import dlr_callback_url
from tests.integration.webhooks.harness import (
    DLR_PATH,
    INBOUND_PATH,
    fetch,
    message,
    recipient_report,
    recipient_states,
    record_batch,
    report_events,
    send_message,
)
from tests.support.api_keys import issue_api_key
from tests.support.asgi import lifespan_client
from tests.support.live_server import live_server
from tests.support.settings import make_settings

pytestmark = pytest.mark.asyncio

# The official SDKs' test vector (sinch-api.md).
SECRET = "SMSWebhooksSecret"
NONCE = "01JHFFHWYY7HSS4FWTMDTQEK8V"
TIMESTAMP = 1736760161
BODY = (
    b'{"at":"2025-01-13T09:22:40.914Z","batch_id":"01JHFFHQ0P99JPPNQPJDV7JTBP",'
    b'"client_reference":"a client reference","code":0,'
    b'"operator_status_at":"2025-01-13T09:22:00Z","recipient":"33662162466",'
    b'"status":"Delivered","type":"recipient_delivery_report_sms"}'
)
SIGNATURE = "ZoHei66PPN/kZjw7hFVfGhJOnml3iGNCMWoyQVcE5o0="
PATH_SECRET = "q7Yd0mR2c9LxV4sKf1HbT8uWzE3nJ6pA"


def signed_headers(
    signature: str = SIGNATURE, nonce: str = NONCE, timestamp: int = TIMESTAMP
) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "X-Sinch-Webhook-Signature": signature,
        "X-Sinch-Webhook-Signature-Nonce": nonce,
        "X-Sinch-Webhook-Signature-Timestamp": str(timestamp),
        "X-Sinch-Webhook-Signature-Algorithm": "HmacSHA256",
    }


@asynccontextmanager
async def gateway(
    database_url: str, clock: Callable[[], float] | None = None, **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app_settings = make_settings(database_url, **settings)
    app = create_app(app_settings) if clock is None else create_app(app_settings, clock=clock)
    async with lifespan_client(app) as client:
        yield client


async def test_the_sdk_test_vector_is_accepted_when_its_timestamp_is_fresh(
    database_url: str,
) -> None:
    async with gateway(
        database_url, clock=lambda: TIMESTAMP + 10, webhook_signing_secret=SECRET
    ) as client:
        response = await client.post(DLR_PATH, content=BODY, headers=signed_headers())
        assert response.status_code == 200, response.text
        assert response.json()["outcome"] == "unknown_batch"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_signature_header"),
        (signed_headers(signature=base64.b64encode(b"x" * 32).decode()), "bad_signature"),
        (signed_headers(nonce="01JHFFHWYY7HSS4FWTMDTQEK8W"), "bad_signature"),
        (signed_headers(timestamp=TIMESTAMP + 1), "bad_signature"),
    ],
    ids=["unsigned", "wrong_signature", "other_nonce", "other_timestamp"],
)
async def test_a_wrong_or_missing_signature_is_a_401(
    database_url: str, headers: dict[str, str], code: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="smsgateway.api.webhooks")
    async with gateway(
        database_url, clock=lambda: TIMESTAMP, webhook_signing_secret=SECRET
    ) as client:
        response = await client.post(DLR_PATH, content=BODY, headers=headers)
    assert response.status_code == 401
    # The answer never says which check failed; our log does.
    assert response.json()["code"] == "unauthorized"
    assert [r.reason for r in caplog.records if r.getMessage() == "sinch webhook call refused"] == [  # type: ignore[attr-defined]
        code
    ]


async def test_every_failing_layer_gets_the_same_answer(database_url: str) -> None:
    checks = {
        "webhook_signing_secret": SECRET,
        "webhook_basic_user": "sinch",
        "webhook_basic_password": "basic-password-0123456789",
        "webhook_path_secret": "path-secret-0123456789abcdef",
    }
    basic = "Basic " + base64.b64encode(b"sinch:basic-password-0123456789").decode()
    async with gateway(database_url, clock=lambda: TIMESTAMP, **checks) as client:
        answers = [
            # wrong path secret; right path, no Basic; right path and Basic, bad signature
            await client.post(f"{DLR_PATH}/wrong-secret-0123456789abcdef", content=BODY),
            await client.post(f"{DLR_PATH}/path-secret-0123456789abcdef", content=BODY),
            await client.post(
                f"{DLR_PATH}/path-secret-0123456789abcdef",
                content=BODY,
                headers={
                    **signed_headers(nonce="01JHFFHWYY7HSS4FWTMDTQEK8W"),
                    "authorization": basic,
                },
            ),
        ]

    shapes = {
        (
            answer.status_code,
            answer.headers.get("www-authenticate"),
            json.dumps(
                {k: v for k, v in answer.json().items() if k not in ("request_id", "instance")}
            ),
        )
        for answer in answers
    }
    assert len(shapes) == 1
    [(status, challenge, _)] = shapes
    assert status == 401
    assert challenge == 'Basic realm="sinch-webhooks"'


async def test_a_changed_body_is_a_401(database_url: str) -> None:
    async with gateway(
        database_url, clock=lambda: TIMESTAMP, webhook_signing_secret=SECRET
    ) as client:
        body = BODY.replace(b"Delivered", b"Failed")
        response = await client.post(DLR_PATH, content=body, headers=signed_headers())
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


def replays(reason: str) -> float:
    value = REGISTRY.get_sample_value("smsgw_webhook_signature_replays_total", {"reason": reason})
    return value or 0.0


def sign(body: bytes, nonce: str, timestamp: int, secret: str = SECRET) -> dict[str, str]:
    signed = b".".join((body, nonce.encode(), str(timestamp).encode()))
    signature = base64.b64encode(hmac.digest(secret.encode(), signed, hashlib.sha256)).decode()
    return signed_headers(signature=signature, nonce=nonce, timestamp=timestamp)


@asynccontextmanager
async def signed_gateway(
    database_url: str, clock: Callable[[], float], **settings: Any
) -> AsyncIterator[str]:
    """A gateway with signing on, served on a loopback socket; yields its base URL."""
    app = create_app(
        make_settings(
            database_url,
            SINCH_NUMBER="+12025550123",
            webhook_signing_secret=SECRET,
            webhook_signature_max_age_seconds=300,
            **settings,
        ),
        clock=clock,
    )
    async with live_server(app) as base_url:
        yield base_url


async def delivered_report_for_a_message(
    client: httpx.AsyncClient, database_url: str
) -> tuple[str, bytes]:
    """A message handed to Sinch as a batch, and the body of its Delivered report."""
    client.headers["X-API-Key"] = await issue_api_key(database_url, name="ops", tenant="acme")
    message_id = await send_message(client, ["+46701234567"])
    await record_batch(database_url, message_id, "01JHFFHQ0P99JPPNQPJDV7JTBQ")
    report = recipient_report(
        "01JHFFHQ0P99JPPNQPJDV7JTBQ", "46701234567", "Delivered", 0, "2026-12-03T09:00:00.000Z"
    )
    return message_id, json.dumps(report).encode()


@pytest.mark.parametrize(
    ("age", "reason"),
    [(301, "stale_timestamp"), (23 * 3600, "stale_timestamp"), (-301, "future_timestamp")],
    ids=["just_stale", "a_day_old_retry", "ahead"],
)
async def test_a_signed_report_outside_the_window_is_applied_and_counted(
    database_url: str, age: int, reason: str
) -> None:
    # Sinch retries for ~22 h 45 min, maybe with the first attempt's headers: never a 401.
    now = 1_800_000_000
    before = replays(reason)
    async with (
        signed_gateway(database_url, clock=lambda: now) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        message_id, body = await delivered_report_for_a_message(client, database_url)
        response = await client.post(
            "/webhooks/sinch", content=body, headers=sign(body, NONCE, now - age)
        )
        assert response.status_code == 200, response.text
        assert response.json()["outcome"] == "applied"
        assert recipient_states(await message(client, message_id)) == {"+46701234567": "delivered"}
    assert replays(reason) == before + 1


async def test_a_replayed_nonce_is_applied_idempotently_and_counted(database_url: str) -> None:
    now = 1_800_000_000
    before = replays("nonce_reused")
    async with (
        signed_gateway(database_url, clock=lambda: now) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        message_id, body = await delivered_report_for_a_message(client, database_url)
        headers = sign(body, NONCE, now - 10)
        first = await client.post("/webhooks/sinch", content=body, headers=headers)
        replay = await client.post("/webhooks/sinch", content=body, headers=headers)
        document = await message(client, message_id)
    assert (first.status_code, replay.status_code) == (200, 200)
    assert (first.json()["outcome"], replay.json()["outcome"]) == ("applied", "duplicate")
    assert len(report_events(document)) == 1
    assert replays("nonce_reused") == before + 1


async def test_a_nonce_used_on_one_process_is_counted_on_another(database_url: str) -> None:
    # Two apps on one database, as two gateway processes are.
    before = replays("nonce_reused")
    async with (
        gateway(database_url, clock=lambda: TIMESTAMP, webhook_signing_secret=SECRET) as one,
        gateway(database_url, clock=lambda: TIMESTAMP, webhook_signing_secret=SECRET) as other,
    ):
        first = await one.post(DLR_PATH, content=BODY, headers=signed_headers())
        replay = await other.post(DLR_PATH, content=BODY, headers=signed_headers())
        again = await one.post(DLR_PATH, content=BODY, headers=signed_headers())
    assert (first.status_code, replay.status_code, again.status_code) == (200, 200, 200)
    assert replays("nonce_reused") == before + 2
    assert [row["nonce"] for row in await fetch(database_url, "SELECT * FROM webhook_nonce")] == [
        NONCE
    ]


async def test_concurrent_calls_with_one_nonce_all_pass_and_all_but_one_count(
    database_url: str,
) -> None:
    before = replays("nonce_reused")
    async with gateway(
        database_url, clock=lambda: TIMESTAMP, webhook_signing_secret=SECRET
    ) as client:
        answers = await asyncio.gather(
            *(client.post(DLR_PATH, content=BODY, headers=signed_headers()) for _ in range(8))
        )
    assert [answer.status_code for answer in answers] == [200] * 8
    assert replays("nonce_reused") == before + 7


async def test_a_nonce_that_cannot_be_recorded_does_not_fail_the_report(
    database_url: str,
) -> None:
    now = 1_800_000_000
    async with (
        signed_gateway(database_url, clock=lambda: now) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        message_id, body = await delivered_report_for_a_message(client, database_url)
        await fetch(database_url, "DROP TABLE webhook_nonce")
        response = await client.post(
            "/webhooks/sinch", content=body, headers=sign(body, NONCE, now)
        )
        assert response.status_code == 200, response.text
        assert recipient_states(await message(client, message_id)) == {"+46701234567": "delivered"}


async def test_a_refused_signature_does_not_use_up_its_nonce(database_url: str) -> None:
    async with gateway(
        database_url, clock=lambda: TIMESTAMP, webhook_signing_secret=SECRET
    ) as client:
        forged = await client.post(
            DLR_PATH, content=BODY, headers=signed_headers(signature=SIGNATURE[:-4] + "AAA=")
        )
        assert await fetch(database_url, "SELECT * FROM webhook_nonce") == []
        genuine = await client.post(DLR_PATH, content=BODY, headers=signed_headers())
    assert forged.status_code == 401
    assert genuine.status_code == 200, genuine.text


async def test_a_signed_call_is_a_503_while_the_database_is_away() -> None:
    settings = make_settings(
        "postgresql://nobody@127.0.0.1:9/nowhere",
        db_connect_timeout_seconds=0.5,
        webhook_signing_secret=SECRET,
    )
    app = create_app(settings, clock=lambda: TIMESTAMP)
    async with lifespan_client(app) as client:
        response = await client.post(DLR_PATH, content=BODY, headers=signed_headers())
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert response.headers["retry-after"]


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}", "content-type": "application/json"}


@pytest.mark.parametrize("path", [DLR_PATH, INBOUND_PATH])
async def test_basic_credentials_are_checked(database_url: str, path: str) -> None:
    async with gateway(
        database_url, webhook_basic_user="sinch", webhook_basic_password="s3cret-pass"
    ) as client:
        good = await client.post(path, content=BODY, headers=basic("sinch", "s3cret-pass"))
        wrong = await client.post(path, content=BODY, headers=basic("sinch", "s3cret-pasS"))
        missing = await client.post(path, content=BODY)
    assert good.status_code == 200, good.text
    assert wrong.status_code == missing.status_code == 401
    assert wrong.json()["code"] == "unauthorized"
    assert wrong.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize("path", [DLR_PATH, INBOUND_PATH])
async def test_the_path_secret_is_checked(database_url: str, path: str) -> None:
    async with gateway(database_url, webhook_path_secret=PATH_SECRET) as client:
        good = await client.post(f"{path}/{PATH_SECRET}", content=BODY)
        wrong = await client.post(f"{path}/{PATH_SECRET[:-1]}X", content=BODY)
        missing = await client.post(path, content=BODY)
    assert good.status_code == 200, good.text
    assert wrong.status_code == missing.status_code == 401
    assert wrong.json()["code"] == "unauthorized"


async def test_a_path_secret_is_refused_when_none_is_configured(database_url: str) -> None:
    async with gateway(database_url) as client:
        response = await client.post(f"{DLR_PATH}/{PATH_SECRET}", content=BODY)
    assert response.status_code == 401


async def test_every_check_that_is_on_must_pass(database_url: str) -> None:
    async with gateway(
        database_url,
        clock=lambda: TIMESTAMP,
        webhook_signing_secret=SECRET,
        webhook_basic_user="sinch",
        webhook_basic_password="s3cret-pass",
        webhook_path_secret=PATH_SECRET,
    ) as client:
        url = f"{DLR_PATH}/{PATH_SECRET}"
        headers = {**signed_headers(), **basic("sinch", "s3cret-pass")}
        no_basic = await client.post(url, content=BODY, headers=signed_headers())
        no_signature = await client.post(url, content=BODY, headers=basic("sinch", "s3cret-pass"))
        everything = await client.post(url, content=BODY, headers=headers)
    assert (no_basic.status_code, no_signature.status_code) == (401, 401)
    assert everything.status_code == 200


async def test_the_dispatcher_gives_sinch_the_one_url_with_the_path_secret() -> None:
    settings = make_settings(PUBLIC_BASE_URL="https://gw.example", webhook_path_secret=PATH_SECRET)
    assert (
        dlr_callback_url(settings, PATH_SECRET)
        == f"https://gw.example/webhooks/sinch/{PATH_SECRET}"
    )


async def test_with_signing_on_batches_carry_no_callback_url() -> None:
    # Sinch then calls the dashboard's URL, whatever a batch says.
    settings = make_settings(PUBLIC_BASE_URL="https://gw.example", webhook_signing_secret=SECRET)
    assert dlr_callback_url(settings, None) is None


@pytest.mark.parametrize("path", [DLR_PATH, INBOUND_PATH, "/webhooks/sinch"])
async def test_a_signed_call_is_refused_only_for_its_signature(
    database_url: str, path: str
) -> None:
    async with gateway(
        database_url, clock=lambda: TIMESTAMP + 86_400, webhook_signing_secret=SECRET
    ) as client:
        forged = await client.post(
            path, content=BODY, headers=signed_headers(signature=SIGNATURE[:-4] + "AAA=")
        )
        stale = await client.post(path, content=BODY, headers=signed_headers())
    assert forged.status_code == 401
    assert forged.json()["code"] == "unauthorized"
    assert stale.status_code == 200, stale.text
