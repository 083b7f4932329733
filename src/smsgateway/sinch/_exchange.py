"""One HTTP exchange with Sinch: build, authenticate, send, and map the answer to an error.

Everything per exchange lives here (request id header, observer calls, the debug log line, body
parsing), so the client is left with what is per operation: paths, retries and the send guard.

On the raw transport with an API token (the gateway's default), a request is written as bytes
and handed to the transport directly: httpx's request, header and response models cost about
twice what the whole exchange costs without them. The httpx client's timeouts and event hooks
still apply; an error answer is still read from a real ``httpx.Response``.
"""

from __future__ import annotations

import functools
import json as jsonlib
import logging
import time
from typing import Any, Protocol, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from smsgateway import __version__
from smsgateway.rawhttp.transport import RawTransport, request_target
from smsgateway.sinch.auth import ApiTokenAuth
from smsgateway.sinch.errors import (
    SinchError,
    SinchHTTPError,
    SinchInvalidResponse,
    SinchNotSent,
    SinchOutcomeUnknown,
    SinchRateLimited,
    SinchRejected,
    SinchServerError,
    SinchUnauthorized,
    error_from_response,
    error_from_transport,
)
from smsgateway.sinch.observer import Operation, Outcome, SinchObserver

logger = logging.getLogger("smsgateway.sinch.client")

ModelT = TypeVar("ModelT", bound=BaseModel)

REQUEST_ID_HEADER = "X-Request-ID"
_USER_AGENT = f"smsgateway/{__version__}"


class Answer(Protocol):
    """A successful answer: what parsing needs of it."""

    @property
    def status_code(self) -> int: ...

    @property
    def content(self) -> bytes: ...


class _RawSuccess:
    __slots__ = ("content", "status_code")

    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code = status_code
        self.content = content


class Exchanger:
    """Sends one request under ``base_url + prefix`` with ``auth``, reporting to ``observer``.

    Never logs headers or bodies: they carry the token and the recipients. Paths that contain a
    recipient are logged as the caller's masked ``log_path``.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        prefix: str,
        auth: httpx.Auth,
        observer: SinchObserver,
    ) -> None:
        self._http = http
        self._base_url = base_url
        self._prefix = prefix
        self._auth = auth
        self._observer = observer
        self._direct = _DirectRoute.of(http, base_url + prefix, auth)

    async def __call__(
        self,
        operation: Operation,
        method: str,
        path: str,
        *,
        request_id: str,
        params: dict[str, str | int] | None = None,
        json: dict[str, Any] | None = None,
        log_path: str | None = None,
    ) -> Answer:
        """One HTTP exchange: the 2xx response, or the ``SinchError`` it amounts to."""
        # Outcome if the exchange ends in anything but an answer or a SinchError (cancellation).
        outcome: Outcome = "outcome_unknown"
        status: int | None = None
        self._observer.in_flight(1)
        started = time.perf_counter()
        try:
            try:
                if self._direct is not None:
                    response = await self._direct.send(method, path, params, json, request_id)
                else:
                    response = await self._send_through_httpx(
                        method, path, params, json, request_id
                    )
            except httpx.RequestError as exc:
                raise error_from_transport(exc, operation=operation) from exc
            status = response.status_code
            self._observer.answered(operation, status)
            if isinstance(response, httpx.Response) and not response.is_success:
                raise error_from_response(response, operation=operation)
            outcome = "ok"
            return response
        except SinchError as exc:
            # Errors raised inside the auth flow (token fetch) do not know their operation.
            exc.operation = exc.operation or operation
            outcome = _outcome_of(exc)
            if isinstance(exc, SinchHTTPError):
                self._observer.error(operation, exc.code or f"http_{exc.status}")
            raise
        finally:
            seconds = time.perf_counter() - started
            self._observer.in_flight(-1)
            self._observer.request_finished(operation, outcome, seconds)
            logger.debug(
                "Sinch %s %s%s -> %s (%s) in %.3f s (request %s)",
                method,
                self._prefix,
                log_path or path,
                status if status is not None else "no answer",
                outcome,
                seconds,
                request_id,
            )

    async def _send_through_httpx(
        self,
        method: str,
        path: str,
        params: dict[str, str | int] | None,
        json: dict[str, Any] | None,
        request_id: str,
    ) -> httpx.Response:
        request = self._http.build_request(
            method,
            _parsed_url(f"{self._base_url}{self._prefix}{path}"),
            params=params,
            json=json,
            headers={REQUEST_ID_HEADER: request_id, "Accept": "application/json"},
        )
        return await self._http.send(request, auth=self._auth)

    @staticmethod
    def parse(operation: Operation, response: Answer, model: type[ModelT]) -> ModelT:
        """The answer's body as ``model``, or ``SinchInvalidResponse`` naming what was wrong."""
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or '<body>'}: {error['type']}"
                for error in exc.errors()[:5]
            )
            # `from None`: the validation error quotes the body, recipients included.
            raise SinchInvalidResponse(
                f"Sinch's answer to {operation} (HTTP {response.status_code}) does not match "
                f"the contract: {problems}",
                operation=operation,
            ) from None


@functools.lru_cache(maxsize=256)
def _parsed_url(url: str) -> httpx.URL:
    # httpx parses a URL string twice per request (about 30 us of CPU, as much as the client's
    # own work); URLs are immutable, and a send always goes to the same one.
    return httpx.URL(url)


def _outcome_of(error: SinchError) -> Outcome:
    # Most specific first: SinchInvalidResponse is a SinchOutcomeUnknown.
    table: tuple[tuple[type[SinchError], Outcome], ...] = (
        (SinchRejected, "rejected"),
        (SinchUnauthorized, "unauthorized"),
        (SinchRateLimited, "rate_limited"),
        (SinchServerError, "server_error"),
        (SinchNotSent, "not_sent"),
        (SinchInvalidResponse, "invalid_response"),
        (SinchOutcomeUnknown, "outcome_unknown"),
    )
    for kind, outcome in table:
        if isinstance(error, kind):
            return outcome
    return "outcome_unknown"


class _DirectRoute:
    """Requests under one URL prefix, written as bytes for a ``RawTransport``."""

    def __init__(
        self, http: httpx.AsyncClient, transport: RawTransport, prefix: str, authorization: str
    ) -> None:
        self._http = http
        self._transport = transport
        self._origin, target, host = request_target(prefix)
        self._path_prefix = target.rstrip(b"/")
        self._fixed_headers = (
            b"Host: %s\r\nUser-Agent: %s\r\nAccept: application/json\r\n"
            b"Authorization: %s\r\n" % (host, _USER_AGENT.encode(), authorization.encode())
        )

    @classmethod
    def of(cls, http: httpx.AsyncClient, prefix: str, auth: httpx.Auth) -> _DirectRoute | None:
        """A direct route when ``http`` runs on a ``RawTransport`` and ``auth`` is a fixed
        header; None otherwise (OAuth2 fetches and refreshes tokens inside httpx's auth flow)."""
        transport = getattr(http, "_transport", None)  # httpx keeps no public accessor
        if not isinstance(transport, RawTransport) or not isinstance(auth, ApiTokenAuth):
            return None
        return cls(http, transport, prefix, auth.header_value)

    async def send(
        self,
        method: str,
        path: str,
        params: dict[str, str | int] | None,
        json: dict[str, Any] | None,
        request_id: str,
    ) -> Answer:
        target = self._path_prefix + path.encode()
        if params:
            target += b"?" + str(httpx.QueryParams(params)).encode()
        # As httpx encodes a json= body.
        body = (
            b""
            if json is None
            else jsonlib.dumps(
                json, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode()
        )
        head = b"".join(
            (
                b"%s %s HTTP/1.1\r\n" % (method.encode(), target),
                self._fixed_headers,
                b"%s: %s\r\n" % (REQUEST_ID_HEADER.encode(), request_id.encode()),
                b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
                if json is not None
                else b"",
                b"\r\n",
            )
        )
        hooks = self._http.event_hooks
        if hooks["request"] or hooks["response"]:
            return await self._send_with_hooks(head, body)
        answer = await self._transport.send(self._origin, head, body, self._http.timeout.as_dict())
        if 200 <= answer.status < 300:
            return _RawSuccess(answer.status, answer.body)
        return httpx.Response(answer.status, headers=answer.headers, content=answer.body)

    async def _send_with_hooks(self, head: bytes, body: bytes) -> Answer:
        """The same exchange, shown to the client's event hooks as httpx models (tests)."""
        request_line, *header_lines = head.decode().rstrip("\r\n").split("\r\n")
        method, target, _ = request_line.split(" ")
        headers = [(name, value) for name, _, value in (h.partition(": ") for h in header_lines)]
        scheme, _, _ = self._origin
        host = {name.lower(): value for name, value in headers}["host"]
        request = httpx.Request(method, f"{scheme}://{host}{target}", headers=headers, content=body)
        for hook in self._http.event_hooks["request"]:
            await hook(request)
        answer = await self._transport.send(self._origin, head, body, self._http.timeout.as_dict())
        response = httpx.Response(
            answer.status, headers=answer.headers, content=answer.body, request=request
        )
        for hook in self._http.event_hooks["response"]:
            await hook(response)
        return response
