"""Our Standard Webhooks signing, checked against the reference ``standardwebhooks`` library:
what we sign, it verifies; what is changed in transit, it refuses."""

import base64
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook, WebhookVerificationError

from smsgateway.domain.standard_webhooks import (
    HEADER_DESCRIPTIONS,
    WEBHOOK_ID_HEADER,
    WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP_HEADER,
    SigningSecret,
    sign_webhook,
    webhook_headers,
)

OLD = "whsec_" + base64.b64encode(bytes(range(32))).decode()
NEW = "whsec_" + base64.b64encode(bytes(range(100, 132))).decode()
EVENT_ID = "3f0c2d6e-8a51-4b7e-9d3a-0c5e2f1a7b94"
BODY = '{"id":"3f0c2d6e-8a51-4b7e-9d3a-0c5e2f1a7b94","status":"delivered","to":"Åsa"}'.encode()


def test_header_names_are_the_specs() -> None:
    assert (WEBHOOK_ID_HEADER, WEBHOOK_TIMESTAMP_HEADER, WEBHOOK_SIGNATURE_HEADER) == (
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    )
    assert set(HEADER_DESCRIPTIONS) == {
        WEBHOOK_ID_HEADER,
        WEBHOOK_TIMESTAMP_HEADER,
        WEBHOOK_SIGNATURE_HEADER,
    }


def test_the_reference_library_verifies_what_we_sign() -> None:
    now = int(time.time())
    headers = webhook_headers(EVENT_ID, now, BODY, [SigningSecret.parse(OLD)])
    assert headers[WEBHOOK_ID_HEADER] == EVENT_ID
    assert headers[WEBHOOK_TIMESTAMP_HEADER] == str(now)
    assert headers[WEBHOOK_SIGNATURE_HEADER].startswith("v1,")
    assert Webhook(OLD).verify(BODY, headers)["to"] == "Åsa"


def test_the_libraries_shared_test_vector() -> None:
    # The vector the Standard Webhooks libraries (Python, Go, JavaScript, ...) test against.
    secret = SigningSecret.parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    body = b'{"test": 2432232314}'
    assert (
        sign_webhook("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, [secret])
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_rotation_signs_with_every_secret_and_either_verifies() -> None:
    now = int(time.time())
    secrets = [SigningSecret.parse(NEW), SigningSecret.parse(OLD)]
    headers = webhook_headers(EVENT_ID, now, BODY, secrets)
    assert len(headers[WEBHOOK_SIGNATURE_HEADER].split(" ")) == 2
    Webhook(OLD).verify(BODY, headers)
    Webhook(NEW).verify(BODY, headers)
    stranger = "whsec_" + base64.b64encode(b"s" * 32).decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(stranger).verify(BODY, headers)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (WEBHOOK_ID_HEADER, "3f0c2d6e-8a51-4b7e-9d3a-0c5e2f1a7b95"),
        (WEBHOOK_TIMESTAMP_HEADER, None),
        (WEBHOOK_SIGNATURE_HEADER, "v1," + base64.b64encode(b"x" * 32).decode()),
    ],
)
def test_a_changed_header_is_refused(header: str, value: str | None) -> None:
    now = int(time.time())
    headers = webhook_headers(EVENT_ID, now, BODY, [SigningSecret.parse(OLD)])
    headers[header] = value if value is not None else str(now - 1)
    with pytest.raises(WebhookVerificationError):
        Webhook(OLD).verify(BODY, headers)


def test_an_old_timestamp_is_refused_by_receivers() -> None:
    then = int(time.time()) - 600
    headers = webhook_headers(EVENT_ID, then, BODY, [SigningSecret.parse(OLD)])
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(OLD).verify(BODY, headers)


@settings(max_examples=150, deadline=None)
@given(
    key=st.binary(min_size=24, max_size=64),
    event_id=st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
    timestamp=st.integers(0, 4_000_000_000),
    body=st.text(max_size=300),
    data=st.data(),
)
def test_signatures_match_the_reference_and_any_body_change_fails(
    key: bytes, event_id: str, timestamp: int, body: str, data: st.DataObject
) -> None:
    secret = SigningSecret(key)
    reference = Webhook(key)
    raw = body.encode()
    signature = sign_webhook(event_id, timestamp, raw, [secret])
    assert signature == reference.sign(event_id, datetime.fromtimestamp(timestamp, UTC), body)
    if raw:
        index = data.draw(st.integers(0, len(raw) - 1), label="index")
        changed = bytearray(raw)
        changed[index] ^= data.draw(st.integers(1, 255), label="flip")
        assert sign_webhook(event_id, timestamp, bytes(changed), [secret]) != signature


@given(key=st.binary(min_size=24, max_size=64))
def test_secrets_round_trip_and_never_show_in_repr(key: bytes) -> None:
    secret = SigningSecret(key)
    assert SigningSecret.parse(secret.serialise()) == secret
    assert secret.serialise().startswith("whsec_")
    assert repr(secret) == "SigningSecret(<redacted>)"
    assert base64.b64encode(key).decode() not in repr(secret)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (base64.b64encode(b"k" * 32).decode(), "starts with whsec_"),
        ("whsec_", "standard base64"),
        ("whsec_not base64!", "standard base64"),
        ("whsec_" + base64.b64encode(b"k" * 32).decode().rstrip("="), "standard base64"),
        ("whsec_" + base64.urlsafe_b64encode(b"\xfb" * 33).decode(), "standard base64"),
        ("whsec_" + base64.b64encode(b"k" * 23).decode(), "24 to 64 bytes, not 23"),
        ("whsec_" + base64.b64encode(b"k" * 65).decode(), "24 to 64 bytes, not 65"),
        ("whsec_" + base64.b64encode(b"k" * 32).decode() + "\n", "standard base64"),
    ],
)
def test_malformed_secrets_are_refused_without_quoting_them(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as refused:
        SigningSecret.parse(text)
    if len(text) > len("whsec_"):
        assert text.removeprefix("whsec_") not in str(refused.value)


@pytest.mark.parametrize("event_id", ["", "a.b", "has space", "é", "x" * 257])
def test_ids_that_would_make_the_signed_content_ambiguous_are_refused(event_id: str) -> None:
    with pytest.raises(ValueError, match="webhook id"):
        sign_webhook(event_id, 1, b"{}", [SigningSecret.parse(OLD)])


def test_signing_needs_a_secret_and_a_non_negative_time() -> None:
    with pytest.raises(ValueError, match="secret"):
        sign_webhook(EVENT_ID, 1, b"{}", [])
    with pytest.raises(ValueError, match="negative"):
        sign_webhook(EVENT_ID, -1, b"{}", [SigningSecret.parse(OLD)])
    with pytest.raises(ValueError, match="24 to 64"):
        SigningSecret(b"short")
