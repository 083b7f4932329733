"""RFC 9457 problem details: the one shape of every error answer, and the handlers that make it.

Every 4xx and 5xx is ``application/problem+json`` with ``type``, ``title``, ``status``,
``detail``, a stable machine ``code``, the failing fields under ``errors`` and the request id.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

from smsgateway.api.problem_catalogue import FIELD_CODES, PROBLEM_CODES, PROBLEM_KINDS, field_code
from smsgateway.domain.errors import DomainError, ParametersRefused, RecipientsRefused
from smsgateway.observability.logging import request_id_var
from smsgateway.observability.outage import DATABASE_OUTAGE
from smsgateway.store.errors import UNAVAILABLE_ERRORS, DatabaseUnavailableError

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"

# What FastAPI raises for a body it cannot parse where a route takes the raw body (Any).
_FASTAPI_UNPARSEABLE_BODY = "There was an error parsing the body"

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

    field: str = Field(
        description="Where: `body.<path>`, `query.<name>`, `path.<name>` or `header.<name>`.",
        examples=["body.to.0"],
    )
    # A str in Python so that answering never fails on a code; the schema lists the catalogue.
    code: str = Field(
        description="The rule broken; one of the catalogue's field codes (see /problems).",
        examples=["required"],
        json_schema_extra={"enum": list(FIELD_CODES)},
    )
    message: str = Field(examples=["Field required"])


class Problem(BaseModel):
    """An RFC 9457 problem document with the gateway's extension members."""

    model_config = ConfigDict(
        json_schema_serialization_defaults_required=True,
        json_schema_extra=lambda schema: _not_required(schema, "batch_id"),
    )

    type: str = Field(
        description="`/problems/<code>`: GET it for the code's meaning and status.",
        examples=["/problems/validation_error"],
    )
    title: str = Field(
        description="The status's reason phrase.", examples=["Unprocessable Content"]
    )
    status: int = Field(examples=[422])
    detail: str = Field(
        description="A sentence for a person about this occurrence.",
        examples=["body.to.0: Field required"],
    )
    code: str = Field(
        description="Stable machine code; the catalogue at /problems lists each with its status.",
        examples=["validation_error"],
        json_schema_extra={"enum": list(PROBLEM_CODES)},
    )
    errors: list[ProblemField] = Field(
        default_factory=list, description="Each failing input; empty when no field is at fault."
    )
    request_id: str = Field(
        default="",
        description="The request's id, as in the `X-Request-ID` header.",
        examples=["9f1c2e7a5b3d4c1e8f0a6b2d4c8e1f3a"],
    )
    instance: str | None = Field(
        default=None,
        description="The request's path; null when refused before routing (413, 431).",
        examples=["/v1/messages"],
    )
    # Only some problems carry it (through ``extra``): the one member not always present.
    batch_id: str = Field(
        default="",
        description="`not_cancellable` only: the Sinch batch that already holds the message.",
        examples=["01FC66621XXXXX119Z8PMV1QPQ"],
    )


def _not_required(schema: dict[str, Any], *names: str) -> None:
    schema["required"] = [name for name in schema.get("required", []) if name not in names]


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
        request_id=request_id_var.get() or "",
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
    if any(error.code == "malformed_json" for error in errors):
        return problem_response(
            400,
            "malformed_json",
            "The request body is not valid JSON.",
            errors=errors,
            instance=_instance(request),
        )
    detail = "; ".join(f"{error.field}: {error.message}" for error in errors[:5])
    # One rule with a problem code of its own (empty_body, invalid_phone_number) gives the
    # answer that code, as when the domain refuses it; the same fault, the same code.
    codes = {error.code for error in errors}
    code = codes.pop() if len(codes) == 1 and codes <= _UNPROCESSABLE_CODES else "validation_error"
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
    return [ProblemField(field=_located(exc.field), code=exc.code, message=exc.message)]


# Domain refusals name a body field ("to"), or a header by its HTTP name ("Idempotency-Key").
_HEADERS = frozenset({"Idempotency-Key"})


def _located(field: str | None) -> str:
    if not field:
        return "body"
    return f"header.{field}" if field in _HEADERS else f"body.{field}"


async def _on_domain_error(request: Request, exc: DomainError) -> JSONResponse:
    # Domain refusals are well-formed requests the gateway will not act on: 422.
    return problem_response(
        422,
        exc.code,
        exc.message,
        errors=domain_problem_fields(exc),
        instance=_instance(request),
        headers=None if exc.retry_after is None else {"Retry-After": str(exc.retry_after)},
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
    code = _CODE_BY_STATUS.get(
        exc.status_code, "internal_error" if exc.status_code >= 500 else "bad_request"
    )
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else _title(exc.status_code)
    if exc.status_code == 400 and detail == _FASTAPI_UNPARSEABLE_BODY:
        code, detail = "malformed_json", "The request body is not valid JSON."
    elif exc.status_code == 404 and detail == "Not Found":
        detail = f"There is nothing at {_instance(request)}."
    headers = exc.headers
    if exc.status_code == 405:
        detail = f"{request.method} is not allowed on {_instance(request)}."
        allow = _allowed_methods(request, (headers or {}).get("Allow", ""))
        headers = {**(headers or {}), "Allow": allow}
    return problem_response(
        exc.status_code, code, detail, instance=_instance(request), headers=headers
    )


def _allowed_methods(request: Request, starlette_allow: str) -> str:
    """Every method the document lists on this path, with Starlette's own ``Allow`` (which
    names only the first route whose path matched: ``POST`` on /v1/messages, which has GET).
    A concrete path (/v1/messages/preview) wins over a template that also matches it, as
    OpenAPI reads paths."""
    methods = {method.strip() for method in starlette_allow.split(",") if method.strip()}
    path = request.url.path
    paths: dict[str, Any] = request.app.openapi().get("paths", {})
    if path in paths:
        methods |= {method.upper() for method in paths[path]}
    else:
        for template, item in paths.items():
            if re.fullmatch(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)), path):
                methods |= {method.upper() for method in item}
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


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
        code=field_code(str(error.get("type", "invalid"))),
        message=str(error.get("msg", "Invalid value")),
    )


_UNPROCESSABLE_CODES = frozenset(
    code
    for code, kind in PROBLEM_KINDS.items()
    if kind.status == 422 and code != "validation_error"
)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
