"""MMS and binary refusals: each with its stable code, answered before anything is stored or
sent; the gateway (real Postgres, dispatcher on) against the recording Sinch stand-in, which
proves that no refused message reaches Sinch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest

from smsgateway.app import create_app
from tests.support.api_keys import issue_api_key
from tests.support.asgi import lifespan_client
from tests.support.polling import wait_until
from tests.support.recording_sinch import RecordingSinch, running_recording_sinch
from tests.support.settings import make_settings

pytestmark = pytest.mark.asyncio

US = "+12025550143"
MEDIA = {"url": "https://media.example.com/cat.jpg", "message": "Look!", "subject": "Cat"}
BINARY = {"body": "SGVsbG8=", "udh": "050003CC0201"}


@asynccontextmanager
async def gateway(
    database_url: str, sinch: RecordingSinch, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        database_url,
        **{
            "dispatcher": "on",
            "dispatch_poll_seconds": 0.02,
            "SINCH_BASE_URL": sinch.base_url,
            "SINCH_SERVICE_PLAN_ID": sinch.plan_id,
            "SINCH_API_TOKEN": sinch.token,
            "SINCH_NUMBER": "+12025550123",
            "PUBLIC_BASE_URL": "https://gw.example.com",
            **overrides,
        },
    )
    key = await issue_api_key(database_url, f"key-{id(settings)}", tenant="mms")
    async with lifespan_client(create_app(settings)) as client:
        client.headers["X-API-Key"] = key
        yield client


async def stored_messages(database_url: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM sms_log"))
    finally:
        await connection.close()


REFUSALS = [
    pytest.param({"to": [US], "media": {**MEDIA, "url": "http://media.example.com/a.jpg"}},
                 "media_url_not_https", "body.media.url", id="url-not-https"),
    pytest.param({"to": [US], "media": {**MEDIA, "url": "https://10.0.0.7/a.jpg"}},
                 "media_url_private", "body.media.url", id="url-private-ip"),
    pytest.param({"to": [US], "media": {**MEDIA, "url": "https://localhost/a.jpg"}},
                 "media_url_private", "body.media.url", id="url-localhost"),
    pytest.param({"to": [US], "media": {**MEDIA, "url": "https:///a.jpg"}},
                 "media_url_invalid", "body.media.url", id="url-no-host"),
    pytest.param({"to": [US], "media": {**MEDIA, "subject": "s" * 81}},
                 "media_text_too_long", "body.media.subject", id="subject-too-long"),
    pytest.param({"to": [US], "media": {**MEDIA, "message": "m" * 5001}},
                 "media_text_too_long", "body.media.message", id="text-too-long"),
    pytest.param({"to": [US, "+46701234567"], "media": MEDIA},
                 "mms_destination_not_supported", "body.to.1", id="destination-se"),
    pytest.param({"to": [US], "binary": {"body": "A" * 188, "udh": "0401020304"}},
                 "binary_too_long", "body.binary.body", id="binary-over-one-part"),
    pytest.param({"to": [US], "binary": {"body": "not base64!", "udh": "050003CC0201"}},
                 "binary_body_invalid", "body.binary.body", id="binary-not-base64"),
    pytest.param({"to": [US], "binary": {"body": "SGVsbG8=", "udh": "06000"}},
                 "binary_udh_invalid", "body.binary.udh", id="udh-not-hex"),
    pytest.param({"to": [US], "binary": {"body": "SGVsbG8=", "udh": "0700"}},
                 "binary_udh_invalid", "body.binary.udh", id="udh-bad-length"),
    pytest.param({"to": [US], "body": "Hi", "media": MEDIA},
                 "content_choice", "body", id="body-and-media"),
    pytest.param({"to": [US]}, "content_choice", "body", id="no-content"),
    pytest.param({"to": [US], "media": MEDIA, "parameters": {"n": {"default": "x"}}},
                 "parameters_not_supported", "body.parameters", id="media-parameters"),
]  # fmt: skip


@pytest.mark.parametrize(("message", "code", "field"), REFUSALS)
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/preview"])
async def test_each_refusal_has_its_code_and_nothing_is_stored_or_sent(
    database_url: str, path: str, message: dict[str, Any], code: str, field: str
) -> None:
    async with running_recording_sinch() as sinch, gateway(database_url, sinch) as client:
        response = await client.post(path, json=message)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code
    assert problem["detail"]
    assert field in [error["field"] for error in problem["errors"]]
    assert sinch.sent_batches() == []
    assert await stored_messages(database_url) == 0


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/preview"])
async def test_mms_in_region_eu_is_refused_without_a_call_to_sinch(
    database_url: str, path: str
) -> None:
    async with (
        running_recording_sinch() as sinch,
        gateway(database_url, sinch, SINCH_REGION="eu") as client,
    ):
        response = await client.post(path, json={"to": [US], "media": MEDIA})
        # A text in the same region still goes through: only MMS is tied to us.
        text = await client.post("/v1/messages", json={"to": [US], "body": "Hi"})
        assert text.status_code == 202

        async def text_sent() -> bool:
            return len(sinch.sent_batches()) == 1

        await wait_until(text_sent, timeout_s=10, message="the text batch sent")
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "mms_not_available_in_region"
    assert [e["field"] for e in problem["errors"]] == ["body.media"]
    assert "'eu'" in problem["detail"]
    assert [batch.get("type", "mt_text") for batch in sinch.sent_batches()] == ["mt_text"]
    assert await stored_messages(database_url) == 1


async def test_mms_and_binary_batches_on_the_wire(database_url: str) -> None:
    async with running_recording_sinch() as sinch, gateway(database_url, sinch) as client:
        mms = await client.post(
            "/v1/messages",
            json={"to": [US], "media": {**MEDIA, "strict_validation": True}},
        )
        binary = await client.post("/v1/messages", json={"to": [US], "binary": BINARY})
        assert mms.status_code == 202, mms.text
        assert binary.status_code == 202, binary.text

        async def both_sent() -> bool:
            return len(sinch.sent_batches()) == 2

        await wait_until(both_sent, timeout_s=10, message="both batches sent")
    by_type = {batch["type"]: batch for batch in sinch.sent_batches()}
    assert by_type["mt_media"]["body"] == {
        "url": MEDIA["url"],
        "message": "Look!",
        "subject": "Cat",
    }
    assert by_type["mt_media"]["strict_validation"] is True
    assert by_type["mt_media"]["client_reference"] == mms.json()["id"]
    assert "max_number_of_message_parts" not in by_type["mt_media"]
    assert by_type["mt_binary"]["body"] == BINARY["body"]
    assert by_type["mt_binary"]["udh"] == BINARY["udh"].lower()
    assert by_type["mt_binary"]["to"] == [US]


async def test_with_the_media_check_on_unfetchable_media_is_refused_before_storing(
    database_url: str,
) -> None:
    async with (
        running_recording_sinch() as sinch,
        gateway(database_url, sinch, mms_check_media=True, mms_media_allow_private=True) as client,
    ):
        response = await client.post(
            "/v1/messages",
            json={"to": [US], "media": {**MEDIA, "url": "https://127.0.0.1:9/cat.jpg"}},
        )
    assert response.status_code == 422
    assert response.json()["code"] == "media_unreachable"
    assert sinch.sent_batches() == []
    assert await stored_messages(database_url) == 0


async def test_preview_says_what_an_mms_would_send(database_url: str) -> None:
    async with running_recording_sinch() as sinch, gateway(database_url, sinch) as client:
        mms = await client.post("/v1/messages/preview", json={"to": [US], "media": MEDIA})
        binary = await client.post("/v1/messages/preview", json={"to": [US], "binary": BINARY})
    assert mms.status_code == 200, mms.text
    preview = mms.json()
    assert (preview["kind"], preview["encoding"], preview["segments"]) == ("media", "MMS", 1)
    assert preview["media"] == {**MEDIA, "strict_validation": None}
    assert preview["text"] == "Look!"
    assert [r["e164"] for r in preview["recipients"]] == [US]
    assert binary.status_code == 200, binary.text
    assert (binary.json()["kind"], binary.json()["binary"]) == (
        "binary",
        {"body": BINARY["body"], "udh": BINARY["udh"].lower()},
    )
    assert sinch.sent_batches() == []
