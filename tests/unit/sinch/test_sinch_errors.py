"""Every HTTP status and error body form maps to the right SinchError, with Sinch's code kept."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from smsgateway.sinch.errors import (
    SinchConflict,
    SinchError,
    SinchHTTPError,
    SinchInvalidResponse,
    SinchNotFound,
    SinchNotSent,
    SinchOutcomeUnknown,
    SinchRateLimited,
    SinchRejected,
    SinchServerError,
    SinchUnauthorized,
    error_from_response,
    error_from_transport,
    parse_error_body,
    parse_retry_after,
)
from smsgateway.sinch.retry import NO_RETRY
from tests.unit.sinch.fakes import BATCH_ID, answering

REQUEST = httpx.Request("GET", "https://us.sms.api.sinch.com/xms/v1/plan/batches")


def answer(
    status: int, body: bytes = b"", content_type: str = "application/json"
) -> httpx.Response:
    return httpx.Response(status, content=body, headers={"content-type": content_type})


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, SinchRejected),
        (403, SinchRejected),
        (404, SinchNotFound),
        (409, SinchConflict),
        (413, SinchRejected),
        (422, SinchRejected),
        (401, SinchUnauthorized),
        (429, SinchRateLimited),
        (500, SinchServerError),
        (502, SinchServerError),
        (503, SinchServerError),
        (504, SinchServerError),
    ],
)
def test_each_error_status_maps_to_its_error(status: int, kind: type[SinchHTTPError]) -> None:
    error = error_from_response(
        answer(status, b'{"code": "some_code", "text": "Some text"}'), operation="get_batch"
    )

    assert type(error) is kind
    assert error.status == status
    assert (error.code, error.text) == ("some_code", "Some text")
    assert error.operation == "get_batch"


def test_404_and_409_are_still_rejections() -> None:
    assert isinstance(error_from_response(answer(404)), SinchRejected)
    assert isinstance(error_from_response(answer(409)), SinchRejected)


def test_a_redirect_is_an_invalid_response_not_a_success() -> None:
    assert isinstance(error_from_response(answer(302)), SinchInvalidResponse)


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (
            b'{"code": "syntax_constraint_violation", "text": "to: must not be empty"}',
            "application/json",
            ("syntax_constraint_violation", "to: must not be empty"),
        ),
        (
            b'{"error": {"code": 400, "message": "Bad field", "status": "INVALID_ARGUMENT"}}',
            "application/json",
            ("INVALID_ARGUMENT", "Bad field"),
        ),
        (b'{"error": {"code": 403, "message": "No"}}', "application/json", ("403", "No")),
        (b"", "text/plain", (None, None)),
        (b"  \n", "text/plain", (None, None)),
        (b"Unauthorized", "text/plain", (None, "Unauthorized")),
        (b"<html>Bad gateway</html>", "text/html", (None, "<html>Bad gateway</html>")),
        (b"[1, 2]", "application/json", (None, "[1, 2]")),
        (b'{"text": "only text"}', "application/json", (None, "only text")),
        (
            b'{"error": "invalid_client", "error_description": "bad key"}',
            "application/json",
            ("invalid_client", "bad key"),
        ),
    ],
)
def test_error_body_forms(
    body: bytes, content_type: str, expected: tuple[str | None, str | None]
) -> None:
    assert parse_error_body(answer(400, body, content_type)) == expected


def test_an_empty_plain_401_is_unauthorized_without_code() -> None:
    error = error_from_response(answer(401, b"", "text/plain"))

    assert isinstance(error, SinchUnauthorized)
    assert (error.code, error.text) == (None, None)
    assert str(error) == "Sinch answered 401"


def test_long_error_texts_are_cut() -> None:
    _, text = parse_error_body(answer(400, b"x" * 10_000, "text/plain"))

    assert text is not None
    assert len(text) == 500


def test_rate_limit_keeps_retry_after() -> None:
    response = httpx.Response(429, headers={"Retry-After": "7"})

    error = error_from_response(response)

    assert isinstance(error, SinchRateLimited)
    assert error.retry_after == 7.0


def test_rate_limit_without_retry_after() -> None:
    error = error_from_response(httpx.Response(429))

    assert isinstance(error, SinchRateLimited)
    assert error.retry_after is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("12", 12.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        ("soon", None),
        ("nan", None),
        ("Thu, 26 Nov 2026 10:00:30 GMT", 30.0),
        ("Thu, 26 Nov 2026 09:59:00 GMT", 0.0),
    ],
)
def test_retry_after_forms(header: str | None, expected: float | None) -> None:
    now = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)

    assert parse_retry_after(header, now=lambda: now) == expected


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("refused", request=REQUEST),
        httpx.ConnectTimeout("slow connect", request=REQUEST),
        httpx.PoolTimeout("pool full", request=REQUEST),
        httpx.UnsupportedProtocol("ftp", request=REQUEST),
    ],
)
def test_failures_before_sending_are_not_sent(exc: httpx.RequestError) -> None:
    error = error_from_transport(exc, operation="send_batch")

    assert type(error) is SinchNotSent
    assert not isinstance(error, SinchOutcomeUnknown)


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadTimeout("slow answer", request=REQUEST),
        httpx.WriteTimeout("slow write", request=REQUEST),
        httpx.ReadError("reset", request=REQUEST),
        httpx.WriteError("broken pipe", request=REQUEST),
        httpx.RemoteProtocolError("server disconnected", request=REQUEST),
    ],
)
def test_failures_after_sending_are_outcome_unknown(exc: httpx.RequestError) -> None:
    error = error_from_transport(exc, operation="send_batch")

    assert type(error) is SinchOutcomeUnknown
    assert not isinstance(error, SinchNotSent)


def test_an_undecodable_answer_is_an_invalid_response() -> None:
    error = error_from_transport(httpx.DecodingError("bad gzip", request=REQUEST))

    assert isinstance(error, SinchInvalidResponse)
    assert isinstance(error, SinchOutcomeUnknown)


def test_every_error_is_a_sinch_error() -> None:
    kinds = [
        SinchRejected,
        SinchNotFound,
        SinchConflict,
        SinchUnauthorized,
        SinchRateLimited,
        SinchServerError,
        SinchNotSent,
        SinchOutcomeUnknown,
        SinchInvalidResponse,
    ]
    assert all(issubclass(kind, SinchError) for kind in kinds)


def test_error_messages_mask_recipients() -> None:
    error = error_from_response(
        answer(400, b'{"code": "syntax_invalid_parameter_format", "text": "bad +15551234567"}')
    )

    assert "+15551234567" not in str(error)
    assert "+1555***4567" in str(error)
    assert error.text == "bad +15551234567"  # kept whole for the message's record


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (
            400,
            b'{"code": "syntax_invalid_json", "text": "x"}',
            SinchRejected,
            "syntax_invalid_json",
        ),
        (403, b'{"code": "blocked_account", "text": "x"}', SinchRejected, "blocked_account"),
        (404, b'{"code": "not_found", "text": "x"}', SinchNotFound, "not_found"),
        (409, b"", SinchConflict, None),
        (401, b"", SinchUnauthorized, None),
        (429, b'{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}', SinchRateLimited, None),
        (503, b"", SinchServerError, None),
    ],
)
async def test_the_client_raises_the_mapped_error(
    make_client, status: int, body: bytes, kind: type[SinchHTTPError], code: str | None
) -> None:
    client = make_client(answering(status, content=body), retry_policy=NO_RETRY)

    with pytest.raises(kind) as caught:
        await client.get_batch(BATCH_ID)

    assert caught.value.status == status
    if code is not None:
        assert caught.value.code == code
    assert caught.value.operation == "get_batch"


@pytest.mark.asyncio
async def test_a_malformed_success_body_is_an_invalid_response(make_client) -> None:
    client = make_client(answering(200, json={"id": 5}), retry_policy=NO_RETRY)

    with pytest.raises(SinchInvalidResponse, match="does not match the contract"):
        await client.get_batch(BATCH_ID)


@pytest.mark.asyncio
async def test_a_non_json_success_body_is_an_invalid_response(make_client) -> None:
    client = make_client(answering(200, text="<html>"), retry_policy=NO_RETRY)

    with pytest.raises(SinchInvalidResponse):
        await client.get_batch(BATCH_ID)
