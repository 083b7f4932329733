"""Authenticating Sinch's webhook calls: HMAC signature, HTTP Basic and the path secret."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from smsgateway.app import create_app
from smsgateway.components import dispatch_config
from tests.integration.webhooks.harness import DLR_PATH, INBOUND_PATH, fetch
from tests.support.asgi import lifespan_client
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
    database_url: str, headers: dict[str, str], code: str
) -> None:
    async with gateway(
        database_url, clock=lambda: TIMESTAMP, webhook_signing_secret=SECRET
    ) as client:
        response = await client.post(DLR_PATH, content=BODY, headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == code


async def test_a_changed_body_is_a_401(database_url: str) -> None:
    async with gateway(
        database_url, clock=lambda: TIMESTAMP, webhook_signing_secret=SECRET
    ) as client:
        body = BODY.replace(b"Delivered", b"Failed")
        response = await client.post(DLR_PATH, content=body, headers=signed_headers())
    assert response.status_code == 401
    assert response.json()["code"] == "bad_signature"


async def test_a_stale_timestamp_is_a_401(database_url: str) -> None:
    async with gateway(
        database_url,
        clock=lambda: TIMESTAMP + 301,
        webhook_signing_secret=SECRET,
        webhook_signature_max_age_seconds=300,
    ) as client:
        response = await client.post(DLR_PATH, content=BODY, headers=signed_headers())
    assert response.status_code == 401
    assert response.json()["code"] == "stale_signature_timestamp"


async def test_a_reused_nonce_is_a_401(database_url: str) -> None:
    async with gateway(
        database_url, clock=lambda: TIMESTAMP, webhook_signing_secret=SECRET
    ) as client:
        first = await client.post(DLR_PATH, content=BODY, headers=signed_headers())
        replay = await client.post(DLR_PATH, content=BODY, headers=signed_headers())
    assert first.status_code == 200
    assert replay.status_code == 401
    assert replay.json()["code"] == "signature_nonce_reused"


async def test_a_nonce_used_on_one_process_is_refused_on_another(database_url: str) -> None:
    # Two apps on one database, as two gateway processes are.
    async with (
        gateway(database_url, clock=lambda: TIMESTAMP, webhook_signing_secret=SECRET) as one,
        gateway(database_url, clock=lambda: TIMESTAMP, webhook_signing_secret=SECRET) as other,
    ):
        first = await one.post(DLR_PATH, content=BODY, headers=signed_headers())
        replay = await other.post(DLR_PATH, content=BODY, headers=signed_headers())
        again = await one.post(DLR_PATH, content=BODY, headers=signed_headers())
    assert first.status_code == 200, first.text
    assert (replay.status_code, again.status_code) == (401, 401)
    assert replay.json()["code"] == again.json()["code"] == "signature_nonce_reused"
    assert [row["nonce"] for row in await fetch(database_url, "SELECT * FROM webhook_nonce")] == [
        NONCE
    ]


async def test_concurrent_calls_with_one_nonce_pass_once(database_url: str) -> None:
    async with gateway(
        database_url, clock=lambda: TIMESTAMP, webhook_signing_secret=SECRET
    ) as client:
        answers = await asyncio.gather(
            *(client.post(DLR_PATH, content=BODY, headers=signed_headers()) for _ in range(8))
        )
    assert sorted(answer.status_code for answer in answers) == [200] + [401] * 7


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
    assert wrong.json()["code"] == "bad_basic_credentials"
    assert wrong.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize("path", [DLR_PATH, INBOUND_PATH])
async def test_the_path_secret_is_checked(database_url: str, path: str) -> None:
    async with gateway(database_url, webhook_path_secret=PATH_SECRET) as client:
        good = await client.post(f"{path}/{PATH_SECRET}", content=BODY)
        wrong = await client.post(f"{path}/{PATH_SECRET[:-1]}X", content=BODY)
        missing = await client.post(path, content=BODY)
    assert good.status_code == 200, good.text
    assert wrong.status_code == missing.status_code == 401
    assert wrong.json()["code"] == "bad_path_secret"


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


async def test_the_dispatcher_gives_sinch_the_url_with_the_path_secret() -> None:
    settings = make_settings(PUBLIC_BASE_URL="https://gw.example", webhook_path_secret=PATH_SECRET)
    assert (
        dispatch_config(settings).dlr_callback_url
        == f"https://gw.example/webhooks/sinch/delivery-reports/{PATH_SECRET}"
    )
