"""Sinch's callback HMAC (with the SDKs' published vector) and Basic credentials."""

import base64
import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsgateway.domain.webhook_signatures import (
    ReplaySign,
    SignatureCheck,
    SignatureRefusal,
    check_basic_credentials,
    mark_reused_nonce,
    verify_sinch_signature,
)

SECRET = "SMSWebhooksSecret"
NONCE = "01JHFFHWYY7HSS4FWTMDTQEK8V"
TIMESTAMP = "1736760161"
BODY = (
    b'{"at":"2025-01-13T09:22:40.914Z","batch_id":"01JHFFHQ0P99JPPNQPJDV7JTBP",'
    b'"client_reference":"a client reference","code":0,'
    b'"operator_status_at":"2025-01-13T09:22:00Z","recipient":"33662162466",'
    b'"status":"Delivered","type":"recipient_delivery_report_sms"}'
)
SIGNATURE = "ZoHei66PPN/kZjw7hFVfGhJOnml3iGNCMWoyQVcE5o0="
NOW = 1736760161 + 5.0
MAX_AGE = 300.0


def sinch_headers(**overrides: str | None) -> dict[str, str]:
    headers = {
        "x-sinch-webhook-signature": SIGNATURE,
        "x-sinch-webhook-signature-nonce": NONCE,
        "x-sinch-webhook-signature-timestamp": TIMESTAMP,
        "x-sinch-webhook-signature-algorithm": "HmacSHA256",
    }
    for suffix, value in overrides.items():
        name = "x-sinch-webhook-signature" + ("" if suffix == "signature" else f"-{suffix}")
        if value is None:
            del headers[name]
        else:
            headers[name] = value
    return headers


def sign_like_sinch(body: bytes, nonce: str, timestamp: str, secret: str = SECRET) -> str:
    """An independent signer, written from the contract's wording."""
    signed = body + b"." + nonce.encode() + b"." + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()


def verify(
    body: bytes = BODY, headers: dict[str, str] | None = None, **kwargs: float
) -> SignatureCheck:
    return verify_sinch_signature(
        body,
        sinch_headers() if headers is None else headers,
        SECRET,
        kwargs.get("now", NOW),
        kwargs.get("max_age_seconds", MAX_AGE),
    )


def test_the_published_vector_verifies() -> None:
    assert sign_like_sinch(BODY, NONCE, TIMESTAMP) == SIGNATURE
    check = verify()
    assert check.ok
    assert check.refusal is None
    assert check.nonce == NONCE
    assert check.timestamp == int(TIMESTAMP)


@pytest.mark.parametrize(
    "headers",
    [
        {name.upper(): value for name, value in sinch_headers().items()},
        {name.title(): value for name, value in sinch_headers().items()},
        {"X-Sinch-Webhook-Signature": SIGNATURE, **sinch_headers(signature=None)},
    ],
)
def test_header_names_match_in_any_case(headers: dict[str, str]) -> None:
    assert verify(headers=headers).ok


@pytest.mark.parametrize("algorithm", ["HmacSHA256", "hmacsha256", " HMACSHA256 "])
def test_the_algorithm_name_matches_in_any_case(algorithm: str) -> None:
    assert verify(headers=sinch_headers(algorithm=algorithm)).ok


def test_surrounding_spaces_in_header_values_are_ignored() -> None:
    headers = sinch_headers(
        signature=f" {SIGNATURE} ", nonce=f" {NONCE}", timestamp=f"{TIMESTAMP} "
    )
    assert verify(headers=headers).ok


@pytest.mark.parametrize("missing", ["signature", "nonce", "timestamp", "algorithm"])
def test_a_missing_header_is_refused(missing: str) -> None:
    check = verify(headers=sinch_headers(**{missing: None}))
    assert check.refusal is SignatureRefusal.MISSING_HEADER
    name = "x-sinch-webhook-signature" + ("" if missing == "signature" else f"-{missing}")
    assert check.detail == f"missing: {name}"


@pytest.mark.parametrize("missing", ["signature", "nonce", "timestamp", "algorithm"])
def test_a_blank_header_is_refused_as_missing(missing: str) -> None:
    check = verify(headers=sinch_headers(**{missing: "  "}))
    assert check.refusal is SignatureRefusal.MISSING_HEADER


def test_no_headers_at_all_is_refused() -> None:
    assert verify(headers={}).refusal is SignatureRefusal.MISSING_HEADER


@pytest.mark.parametrize("algorithm", ["HmacSHA1", "HmacSHA512", "sha256", "none"])
def test_another_algorithm_is_refused(algorithm: str) -> None:
    check = verify(headers=sinch_headers(algorithm=algorithm))
    assert check.refusal is SignatureRefusal.UNSUPPORTED_ALGORITHM


@pytest.mark.parametrize("timestamp", ["1736760161.0", "-1736760161", "1_736_760_161", "soon"])
def test_a_timestamp_that_is_not_unix_seconds_is_refused(timestamp: str) -> None:
    check = verify(headers=sinch_headers(timestamp=timestamp))
    assert check.refusal is SignatureRefusal.MALFORMED_HEADER


@pytest.mark.parametrize("nonce", ["a b", "nonce\u00e9", "x" * 257])
def test_a_nonce_that_is_not_visible_ascii_is_refused(nonce: str) -> None:
    check = verify(headers=sinch_headers(nonce=nonce))
    assert check.refusal is SignatureRefusal.MALFORMED_HEADER


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (BODY.replace(b"Delivered", b"Failed\x20\x20\x20"), sinch_headers()),
        (BODY + b"\n", sinch_headers()),
        (BODY.replace(b'{"at"', b'{ "at"'), sinch_headers()),  # re-serialised JSON
        (BODY, sinch_headers(nonce="01JHFFHWYY7HSS4FWTMDTQEK8W")),
        (BODY, sinch_headers(timestamp="1736760162")),
        (BODY, sinch_headers(signature=SIGNATURE.replace("Z", "Y", 1))),
        (BODY, sinch_headers(signature=SIGNATURE.lower())),
        (BODY, sinch_headers(signature="not base64!")),
        (BODY, sinch_headers(signature=SIGNATURE[:-4])),
        (BODY, sinch_headers(signature="\u00e9" + SIGNATURE)),
    ],
)
def test_a_tampered_callback_is_refused(body: bytes, headers: dict[str, str]) -> None:
    assert verify(body, headers).refusal is SignatureRefusal.BAD_SIGNATURE


def test_a_wrong_secret_is_refused() -> None:
    check = verify_sinch_signature(BODY, sinch_headers(), "another secret", NOW, MAX_AGE)
    assert check.refusal is SignatureRefusal.BAD_SIGNATURE


def test_an_empty_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="secret"):
        verify_sinch_signature(BODY, sinch_headers(), "", NOW, MAX_AGE)


@pytest.mark.parametrize(
    ("now", "replay"),
    [
        (1736760161 + MAX_AGE, None),
        (1736760161 + MAX_AGE + 1, ReplaySign.STALE_TIMESTAMP),
        (1736760161 + 86_400, ReplaySign.STALE_TIMESTAMP),
        (1736760161 - MAX_AGE, None),
        (1736760161 - MAX_AGE - 1, ReplaySign.FUTURE_TIMESTAMP),
    ],
)
def test_timestamps_outside_the_window_are_accepted_as_replay_signs(
    now: float, replay: ReplaySign | None
) -> None:
    # A genuine retry may carry its first attempt's headers: authentic, so never refused.
    check = verify(now=now)
    assert check.ok
    assert check.replay is replay
    assert check.timestamp == int(TIMESTAMP)


def test_the_future_window_can_be_narrower() -> None:
    check = verify_sinch_signature(
        BODY, sinch_headers(), SECRET, 1736760161 - 31, MAX_AGE, max_future_seconds=30
    )
    assert check.ok
    assert check.replay is ReplaySign.FUTURE_TIMESTAMP


def test_a_forged_stale_callback_is_refused_for_its_signature() -> None:
    # The age is only judged once the signature holds, so "stale" means "Sinch signed it".
    headers = sinch_headers(signature=SIGNATURE.replace("Z", "Y", 1))
    check = verify(headers=headers, now=NOW + 86_400)
    assert check.refusal is SignatureRefusal.BAD_SIGNATURE
    assert check.replay is None


def test_a_reused_nonce_is_a_replay_sign_that_keeps_what_was_read() -> None:
    replay = mark_reused_nonce(verify())
    assert replay.ok
    assert replay.replay is ReplaySign.NONCE_REUSED
    assert (replay.nonce, replay.timestamp) == (NONCE, int(TIMESTAMP))


@settings(max_examples=100, deadline=None)
@given(
    body=st.binary(max_size=300),
    nonce=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40),
    secret=st.text(min_size=1, max_size=40),
    data=st.data(),
)
def test_sinch_signatures_round_trip_and_any_byte_change_fails(
    body: bytes, nonce: str, secret: str, data: st.DataObject
) -> None:
    headers = sinch_headers(nonce=nonce, signature=sign_like_sinch(body, nonce, TIMESTAMP, secret))
    assert verify_sinch_signature(body, headers, secret, NOW, MAX_AGE).ok
    if body:
        index = data.draw(st.integers(0, len(body) - 1), label="index")
        delta = data.draw(st.integers(1, 255), label="delta")
        changed = bytearray(body)
        changed[index] = (changed[index] + delta) % 256
        check = verify_sinch_signature(bytes(changed), headers, secret, NOW, MAX_AGE)
        assert check.refusal is SignatureRefusal.BAD_SIGNATURE


def basic(value: str) -> str:
    return "Basic " + base64.b64encode(value.encode()).decode()


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (basic("sinch:s3cret"), True),
        ("basic " + base64.b64encode(b"sinch:s3cret").decode(), True),
        (basic("sinch:s3cret:with:colons"), False),
        (basic("sinch:s3cret-"), False),
        (basic("sinch:"), False),
        (basic("sinc:s3cret"), False),
        (basic("sinch"), False),
        (basic(":s3cret"), False),
        (basic(""), False),
        ("Bearer " + base64.b64encode(b"sinch:s3cret").decode(), False),
        ("Basic not-base64!", False),
        ("Basic " + base64.b64encode(b"sinch:\xff").decode(), False),
        ("Basic", False),
        ("", False),
        (None, False),
    ],
)
def test_basic_credentials(authorization: str | None, expected: bool) -> None:
    assert check_basic_credentials(authorization, "sinch", "s3cret") is expected


def test_basic_passwords_may_hold_colons_and_non_ascii() -> None:
    assert check_basic_credentials(basic("sinch:p:\u00e5ss"), "sinch", "p:\u00e5ss")
