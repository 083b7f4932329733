"""The OpenAPI document as generated clients need it: what FastAPI cannot infer from the routes.

Routes declare their own operationId, models and the problems of their own logic. This adds
what every route shares because middleware or dependencies send it: ``X-Request-ID`` on every
answer; 401/429 with their headers and ``RateLimit-*`` on authenticated routes; 400/413 on
routes with a body; 431, 500 and a ``default`` problem everywhere; 503 with ``Retry-After`` where
the database is asked. It also declares the tags, the problem schema, the security schemes and
our outgoing callbacks under ``webhooks``, and drops ``null`` from optional parameters (leaving
one out is how to say "none"; a nullable header makes clients send ``None``).
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import FastAPI

from smsgateway.api.auth import SECURITY_SCHEMES
from smsgateway.api.outgoing_webhooks import OUTGOING_BODIES, webhooks_document
from smsgateway.api.problems import PROBLEM_MEDIA_TYPE, Problem
from smsgateway.services.sinch_callbacks import callback_body_schemas

TAGS: Final = [
    {"name": "messages", "description": "Send, preview, read, list and cancel messages."},
    {
        "name": "callbacks",
        "description": "Status callbacks the gateway POSTs to a message's `callback_url`: "
        "the events, their attempts, a replay.",
    },
    {
        "name": "inbound",
        "description": "Messages subscribers sent to the gateway's numbers, and opt-outs.",
    },
    {
        "name": "webhooks",
        "description": "Where Sinch posts delivery reports and inbound messages; not for callers.",
    },
    {
        "name": "admin",
        "description": "Protection policies (destinations, velocity, spend caps) per tenant.",
    },
    {"name": "problems", "description": "The error catalogue: every problem code explained."},
    {"name": "health", "description": "Liveness and readiness probes for operators."},
    {"name": "operations", "description": "Prometheus metrics for operators."},
    {
        "name": "express tutorial",
        "description": "The Node/Express tutorial's contract, kept for callers migrating from "
        "it; new callers use `/v1/messages`.",
    },
]

_PROBLEM_REF: Final = "#/components/schemas/Problem"
_PROBLEM_CONTENT: Final = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": _PROBLEM_REF}}}


def _header(description: str, type_: str = "string") -> dict[str, Any]:
    return {"description": description, "schema": {"type": type_}}


_REQUEST_ID: Final = _header("The request's id: yours if you sent a safe one, else ours.")
_RATE_LIMIT: Final = {
    "RateLimit-Limit": _header("Requests allowed in the current window.", "integer"),
    "RateLimit-Remaining": _header("Requests left in the current window.", "integer"),
    "RateLimit-Reset": _header("Seconds until the window resets.", "integer"),
}
_RETRY_AFTER: Final = {"Retry-After": _header("Seconds to wait before retrying.", "integer")}
_CHALLENGE: Final = {
    "WWW-Authenticate": _header("How to authenticate: `Bearer` (API key), or `Basic` for Sinch.")
}

# The problems each kind of route can answer, beyond those its own logic declares.
_Extra = dict[int, tuple[str, dict[str, Any]]]
_EVERYWHERE: Final[_Extra] = {
    431: ("Request Header Fields Too Large: `request_headers_too_large`", {}),
    500: ("Internal Server Error: `internal_error` (logged with the request id)", {}),
}
_AUTHENTICATED: Final[_Extra] = {
    401: ("Unauthorized: `missing_api_key` or `invalid_api_key`", {**_CHALLENGE}),
    429: ("Too Many Requests: `rate_limited`", {**_RATE_LIMIT, **_RETRY_AFTER}),
    503: ("Service Unavailable: `database_unavailable`", {**_RETRY_AFTER}),
}
_WITH_BODY: Final[_Extra] = {
    400: ("Bad Request: `malformed_json`", {}),
    413: ("Content Too Large: `payload_too_large`", {}),
}

# Headers particular to one operation's success answer.
_SUCCESS_HEADERS: Final[dict[str, dict[str, Any]]] = {
    "sendMessage": {
        "Location": {**_header("The message's URL: `/v1/messages/{id}`."), "required": True},
        "Idempotent-Replayed": _header(
            "`true` when this is the stored answer to an earlier request with the same "
            "`Idempotency-Key`; absent otherwise."
        ),
    },
    "createOptOut": {
        "Location": {
            **_header(
                "The opt-out's URL: `/v1/opt-outs/{msisdn}`, with the `sender` or `tenant` "
                "query that addresses it."
            ),
            "required": True,
        }
    },
}


def install_contract(app: FastAPI) -> None:
    """Makes ``app.openapi()`` return the completed document (built once, then cached)."""
    app.openapi_tags = TAGS
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete_document(original())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete_document(schema: dict[str, Any]) -> dict[str, Any]:
    """Adds to FastAPI's document what the routes share (see the module docstring)."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    components["securitySchemes"] = SECURITY_SCHEMES
    _add_model(schemas, Problem)
    for model in OUTGOING_BODIES:
        _add_model(schemas, model)
    schemas.update(callback_body_schemas())
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            _complete_operation(operation)
    schema["webhooks"] = webhooks_document("#/components/schemas/")
    return schema


def _add_model(schemas: dict[str, Any], model: Any) -> None:
    generated = model.model_json_schema(
        ref_template="#/components/schemas/{model}", mode="serialization"
    )
    schemas.update(generated.pop("$defs", {}))
    schemas[model.__name__] = generated


def _complete_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    extra = dict(_EVERYWHERE)
    if operation.get("security"):
        extra |= _AUTHENTICATED
    if "requestBody" in operation:
        extra |= _WITH_BODY
    if operation.get("parameters") or "requestBody" in operation:
        # FastAPI's own 422 (HTTPValidationError) becomes a problem; a NUL in the query is one.
        extra[422] = ("Unprocessable Content: `validation_error` or a field's own code", {})
    for code, (description, headers) in extra.items():
        answer = responses.setdefault(str(code), {"description": description})
        if code == 422:
            answer["description"] = description
        answer.setdefault("headers", {}).update(headers)
    responses.setdefault("default", {"description": "Any other error, as a problem document"})
    for status, answer in responses.items():
        if status == "default" or status[0] in "45":
            # An error is a problem document: a route's own (richer) model where it names one.
            own = answer.get("content", {}).get("application/json", {}).get("schema")
            if own == {"$ref": "#/components/schemas/HTTPValidationError"}:
                own = None  # FastAPI's own 422 shape, which the gateway never sends
            answer["content"] = (
                _PROBLEM_CONTENT if own is None else {PROBLEM_MEDIA_TYPE: {"schema": own}}
            )
        headers = answer.setdefault("headers", {})
        headers["X-Request-ID"] = _REQUEST_ID
        if status == "401":
            headers.update(_CHALLENGE)
        if status == "503":
            headers.update(_RETRY_AFTER)
        if status[0] == "2":
            if operation.get("security"):
                headers.update(_RATE_LIMIT)
            headers.update(_SUCCESS_HEADERS.get(operation.get("operationId", ""), {}))
    for parameter in operation.get("parameters", []):
        _not_nullable(parameter)


def _not_nullable(parameter: dict[str, Any]) -> None:
    """``anyOf: [X, null]`` → ``X`` for an optional parameter: it is omitted, never null."""
    schema = parameter.get("schema", {})
    options = schema.get("anyOf")
    if parameter.get("required") or not isinstance(options, list):
        return
    kept = [option for option in options if option.get("type") != "null"]
    if len(kept) == 1 and len(kept) < len(options):
        del schema["anyOf"]
        schema.update(kept[0])
