"""RFC 9457 problem details: the one shape of every error answer, and the handlers that make it.

Every 4xx and 5xx is ``application/problem+json`` with ``type``, ``title``, ``status``,
``detail``, a stable machine ``code``, the failing fields under ``errors`` and the request id.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import cache
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

from smsgateway.domain.errors import DomainError, ParametersRefused, RecipientsRefused
from smsgateway.observability.logging import request_id_var
from smsgateway.observability.outage import DATABASE_OUTAGE
from smsgateway.store.errors import UNAVAILABLE_ERRORS, DatabaseUnavailableError

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"

_CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    431: "request_headers_too_large",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


class ProblemField(BaseModel):
    """One failing input: where it is, what rule it broke, and a sentence for a person."""

    field: str = Field(examples=["body.to.0"])
    code: str = Field(examples=["missing"])
    message: str = Field(examples=["Field required"])


class Problem(BaseModel):
    """An RFC 9457 problem document with the gateway's extension members."""

    type: str = Field(examples=["/problems/validation_error"])
    title: str = Field(examples=["Unprocessable Content"])
    status: int = Field(examples=[422])
    detail: str = Field(examples=["body.to.0: Field required"])
    code: str = Field(examples=["validation_error"])
    errors: list[ProblemField] = Field(default_factory=list)
    request_id: str | None = Field(default=None, examples=["9f1c2e7a5b3d4c1e8f0a6b2d4c8e1f3a"])
    instance: str | None = Field(default=None, examples=["/v1/messages"])
    batch_id: str | None = Field(
        default=None,
        description="`not_cancellable` only: the Sinch batch that already holds the message.",
        examples=["01FC66621XXXXX119Z8PMV1QPQ"],
    )


class ProblemError(Exception):
    """Raised by the HTTP layer to answer with a specific problem."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        errors: Sequence[ProblemField] = (),
        headers: Mapping[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = list(errors)
        self.headers = headers
        self.extra = extra


class RequestTooLargeError(StarletteHTTPException):
    """The body grew past the configured limit while it was being read."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than the limit of {limit} bytes.")


def build_problem(
    status: int,
    code: str,
    detail: str,
    *,
    errors: Sequence[ProblemField] = (),
    instance: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The problem document as a JSON-ready dict."""
    problem = Problem(
        type=f"/problems/{code}",
        title=_title(status),
        status=status,
        detail=detail,
        code=code,
        errors=list(errors),
        request_id=request_id_var.get(),
        instance=instance,
    ).model_dump(exclude={"batch_id"})  # only some problems carry it, through ``extra``
    if extra:
        problem.update(extra)
    return problem


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    errors: Sequence[ProblemField] = (),
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body = build_problem(status, code, detail, errors=errors, instance=instance, extra=extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


async def send_problem(
    send: Send, status: int, code: str, detail: str, errors: Sequence[ProblemField] = ()
) -> None:
    """Writes a problem answer straight to an ASGI ``send``, for middleware outside routing."""
    response = problem_response(status, code, detail, errors=errors)
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entry documenting a route's problem answers in OpenAPI."""
    return {
        status: {
            "description": _title(status),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def install_problem_handlers(app: FastAPI) -> None:
    """Routes validation, domain and HTTP errors and ``ProblemError`` to problem+json answers."""
    app.add_exception_handler(RequestValidationError, _on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(DomainError, _on_domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(DatabaseUnavailableError, _on_database_unavailable)
    # A safety net: a connection error that a service let through is still the database
    # being away (503, retry), never a 500 with a traceback.
    for error in UNAVAILABLE_ERRORS:
        app.add_exception_handler(error, _on_database_unavailable)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _on_http_error)  # type: ignore[arg-type]
    app.add_exception_handler(ProblemError, _on_problem_error)  # type: ignore[arg-type]


async def _on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [_field_error(error) for error in exc.errors()]
    if any(error.code == "json_invalid" for error in errors):
        return problem_response(
            400,
            "malformed_json",
            "The request body is not valid JSON.",
            errors=errors,
            instance=_instance(request),
        )
    detail = "; ".join(f"{error.field}: {error.message}" for error in errors[:5])
    # A schema check that is a domain rule (empty_body, invalid_character) keeps its own code.
    codes = {error.code for error in errors}
    code = codes.pop() if len(codes) == 1 and codes <= _domain_codes() else "validation_error"
    return problem_response(422, code, detail, errors=errors, instance=_instance(request))


def domain_problem_fields(exc: DomainError) -> list[ProblemField]:
    """The failing fields of a domain refusal, named as request-body locations."""
    if isinstance(exc, RecipientsRefused):
        return [
            ProblemField(
                field=f"body.{exc.field or 'to'}.{refused.index}",
                code=refused.code,
                message=refused.message,
            )
            for refused in exc.refused
        ]
    if isinstance(exc, ParametersRefused):
        return [
            ProblemField(field=f"body.{refusal.field}", code=refusal.code, message=refusal.message)
            for refusal in exc.refusals
        ]
    return [
        ProblemField(
            field=f"body.{exc.field}" if exc.field else "body", code=exc.code, message=exc.message
        )
    ]


async def _on_domain_error(request: Request, exc: DomainError) -> JSONResponse:
    # Domain refusals are well-formed requests the gateway will not act on: 422.
    return problem_response(
        422,
        exc.code,
        exc.message,
        errors=domain_problem_fields(exc),
        instance=_instance(request),
    )


async def _on_database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    DATABASE_OUTAGE.unavailable(str(exc) or type(exc).__name__)
    return problem_response(
        503,
        "database_unavailable",
        "The gateway cannot reach its database right now; nothing was stored. Retry shortly.",
        instance=_instance(request),
        headers={"Retry-After": "1"},
    )


async def _on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _CODE_BY_STATUS.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else _title(exc.status_code)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"There is nothing at {_instance(request)}."
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {_instance(request)}."
    return problem_response(
        exc.status_code, code, detail, instance=_instance(request), headers=exc.headers
    )


async def _on_problem_error(request: Request, exc: ProblemError) -> JSONResponse:
    return problem_response(
        exc.status,
        exc.code,
        exc.detail,
        errors=exc.errors,
        instance=_instance(request),
        headers=exc.headers,
        extra=exc.extra,
    )


def _instance(request: Request) -> str:
    """The request's path for ``instance``, with a webhook path secret (a credential) shown
    as ``{path_secret}``: an answer never echoes a secret."""
    path = request.url.path
    secret = request.path_params.get("path_secret")
    if isinstance(secret, str) and secret:
        path = path.replace(secret, "{path_secret}")
    return path


def _field_error(error: Any) -> ProblemField:
    location = [str(part) for part in error.get("loc", ())]
    return ProblemField(
        field=".".join(location) or "body",
        code=str(error.get("type", "invalid")),
        message=str(error.get("msg", "Invalid value")),
    )


@cache
def _domain_codes() -> frozenset[str]:
    codes: set[str] = set()
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        kind = pending.pop()
        codes.add(kind.default_code)
        pending.extend(kind.__subclasses__())
    return frozenset(codes)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
