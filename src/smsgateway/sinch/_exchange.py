"""One HTTP exchange with Sinch: build, authenticate, send, and map the answer to an error.

Everything per exchange lives here (request id header, observer calls, the debug log line, body
parsing), so the client is left with what is per operation: paths, retries and the send guard.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

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
    ) -> httpx.Response:
        """One HTTP exchange: the 2xx response, or the ``SinchError`` it amounts to."""
        request = self._http.build_request(
            method,
            _parsed_url(f"{self._base_url}{self._prefix}{path}"),
            params=params,
            json=json,
            headers={REQUEST_ID_HEADER: request_id, "Accept": "application/json"},
        )
        # Outcome if the exchange ends in anything but an answer or a SinchError (cancellation).
        outcome: Outcome = "outcome_unknown"
        status: int | None = None
        self._observer.in_flight(1)
        started = time.perf_counter()
        try:
            try:
                response = await self._http.send(request, auth=self._auth)
            except httpx.RequestError as exc:
                raise error_from_transport(exc, operation=operation) from exc
            status = response.status_code
            self._observer.answered(operation, status)
            if not response.is_success:
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

    @staticmethod
    def parse(operation: Operation, response: httpx.Response, model: type[ModelT]) -> ModelT:
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
