"""What can go wrong when talking to Sinch, as one small tree.

::

    SinchError                  base of everything this package raises
    ├── SinchRejected           Sinch refused the request for good (400, 403 and any other 4xx
    │   │                       that is not 401 or 429); carries Sinch's ``code`` and ``text``
    │   ├── SinchNotFound       404: no such batch (or recipient report)
    │   └── SinchConflict       409: e.g. cancelling a batch that was already sent
    ├── SinchUnauthorized       401 (after one OAuth2 refresh), or the token endpoint refused us
    ├── SinchRateLimited        429: transient; carries the Retry-After Sinch gave, in seconds
    ├── SinchServerError        5xx: transient, but the request DID reach Sinch
    ├── SinchNotSent            nothing reached Sinch (connect error, pool timeout, no token):
    │                           always safe to try again, even for a send
    └── SinchOutcomeUnknown     the request went out and no usable answer came back (read
        │                       timeout, connection reset mid-response): a send may or may not
        │                       have created a batch; look it up by ``client_reference``
        └── SinchInvalidResponse  a 2xx whose body is not what the contract promises

The split between ``SinchNotSent`` and ``SinchOutcomeUnknown`` is the one that matters: the first
may be repeated blindly, the second never for a send.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from smsgateway.sinch._masking import mask_msisdns_in

# Sinch's error sentences can be long and may quote the request; keep exceptions log-sized.
_MAX_TEXT = 500


class SinchError(Exception):
    """Base of every error raised by this package; ``operation`` names the call that failed."""

    def __init__(self, message: str, *, operation: str | None = None) -> None:
        # Sinch's sentences can quote recipients: mask them before the text can reach a log.
        super().__init__(mask_msisdns_in(message))
        self.operation = operation


class SinchHTTPError(SinchError):
    """Sinch answered with an error status; ``code`` and ``text`` are Sinch's, when it gave any."""

    def __init__(
        self,
        status: int,
        *,
        code: str | None,
        text: str | None,
        operation: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.text = text
        detail = ": ".join(part for part in (code, text) if part)
        message = f"Sinch answered {status}" + (f" ({detail})" if detail else "")
        super().__init__(message, operation=operation)


class SinchRejected(SinchHTTPError):
    """A permanent refusal (400, 403, 404, 409, other 4xx): repeating the request cannot help."""


class SinchNotFound(SinchRejected):
    """404: the batch (or the recipient's report) does not exist in this service plan."""


class SinchConflict(SinchRejected):
    """409: the request conflicts with the batch's state, e.g. cancelling a batch already sent."""


class SinchUnauthorized(SinchHTTPError):
    """401: the credentials are wrong or expired; an operator must look, retrying will not help."""


class SinchRateLimited(SinchHTTPError):
    """429: transient; ``retry_after`` is Sinch's Retry-After in seconds, ``None`` if absent."""

    def __init__(
        self,
        status: int,
        *,
        code: str | None,
        text: str | None,
        retry_after: float | None,
        operation: str | None = None,
    ) -> None:
        super().__init__(status, code=code, text=text, operation=operation)
        self.retry_after = retry_after


class SinchServerError(SinchHTTPError):
    """5xx: transient. The request reached Sinch, so a send may have been processed."""


class SinchNotSent(SinchError):
    """Nothing reached Sinch (connect failure, pool timeout, no token): safe to repeat."""


class SinchOutcomeUnknown(SinchError):
    """The request went out but no usable answer came back: look a send up, never repeat it."""


class SinchInvalidResponse(SinchOutcomeUnknown):
    """Sinch answered 2xx with a body that does not match the contract."""


def parse_error_body(response: httpx.Response) -> tuple[str | None, str | None]:
    """Sinch's ``(code, text)`` from an error answer, for the three body forms Sinch uses.

    ``{"code": "...", "text": "..."}``; the envelope ``{"error": {"code": 400, "message": "...",
    "status": "INVALID_ARGUMENT"}}`` (code is ``status``, else the number); and an empty or
    text/plain body (code ``None``, text the body if any). The token endpoint's RFC 6749 form
    ``{"error": "invalid_client", "error_description": "..."}`` is read too. Never raises.
    """
    raw = response.text.strip()
    if not raw:
        return None, None
    try:
        body = json.loads(raw)
    except ValueError:
        return None, raw[:_MAX_TEXT]
    if isinstance(body, dict):
        envelope = body.get("error")
        if isinstance(envelope, dict):
            code = envelope.get("status") or envelope.get("code")
            text = envelope.get("message")
        elif isinstance(envelope, str):
            # The OAuth2 token endpoint answers in RFC 6749's form instead.
            code = envelope
            text = body.get("error_description")
        else:
            code = body.get("code")
            text = body.get("text")
        return (
            None if code is None else str(code),
            None if text is None else str(text)[:_MAX_TEXT],
        )
    return None, raw[:_MAX_TEXT]


def parse_retry_after(
    value: str | None, *, now: Callable[[], datetime] | None = None
) -> float | None:
    """Seconds to wait from a Retry-After (delta-seconds or HTTP-date); ``None`` if unusable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        current = now() if now is not None else datetime.now(UTC)
        seconds = (when - current).total_seconds()
    if seconds != seconds:  # NaN: a header we cannot honour
        return None
    return max(0.0, seconds)


def error_from_response(response: httpx.Response, *, operation: str | None = None) -> SinchError:
    """The exception for a non-2xx answer; the caller raises it."""
    status = response.status_code
    code, text = parse_error_body(response)
    if status == 401:
        return SinchUnauthorized(status, code=code, text=text, operation=operation)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return SinchRateLimited(
            status, code=code, text=text, retry_after=retry_after, operation=operation
        )
    if status >= 500:
        return SinchServerError(status, code=code, text=text, operation=operation)
    if status == 404:
        return SinchNotFound(status, code=code, text=text, operation=operation)
    if status == 409:
        return SinchConflict(status, code=code, text=text, operation=operation)
    if 400 <= status < 500:
        return SinchRejected(status, code=code, text=text, operation=operation)
    # 1xx and 3xx: redirects are not followed, and Sinch does not send them for this API.
    return SinchInvalidResponse(f"unexpected HTTP status {status} from Sinch", operation=operation)


# Failures that happen before a single byte of the request can have reached Sinch.
_NOTHING_SENT: tuple[type[httpx.RequestError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)


def error_from_transport(exc: httpx.RequestError, *, operation: str | None = None) -> SinchError:
    """The exception for an httpx failure: ``SinchNotSent`` or ``SinchOutcomeUnknown``.

    Only failures before the request left are "not sent". Write errors count as unknown: part
    of the request may have gone out. A server closing a pooled connection (RemoteProtocolError)
    is usually harmless, but it is indistinguishable from a reset after Sinch read the request.
    """
    kind = type(exc).__name__
    if isinstance(exc, _NOTHING_SENT):
        return SinchNotSent(f"request not sent to Sinch: {kind}", operation=operation)
    if isinstance(exc, httpx.DecodingError):
        return SinchInvalidResponse(f"undecodable answer from Sinch: {kind}", operation=operation)
    return SinchOutcomeUnknown(f"no answer from Sinch: {kind}", operation=operation)
