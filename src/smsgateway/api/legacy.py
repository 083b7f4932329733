"""The Express tutorial's contract, kept for callers migrating from it: ``GET /`` and
``POST /send-sms``. New callers should use ``/v1/messages``."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import ConfigDict, Field, ValidationError

from smsgateway.api.auth import AUTHENTICATED, SendKey
from smsgateway.api.deps import StateDep
from smsgateway.api.messages import accept_request
from smsgateway.api.problems import PROBLEM_MEDIA_TYPE, Problem, build_problem
from smsgateway.api.schemas import MessageIn, ResponseModel
from smsgateway.domain.errors import DomainError
from smsgateway.observability.logging import request_id_var
from smsgateway.services.legacy_send import send_and_wait

router = APIRouter(tags=["express tutorial"])

# The tutorial's own check; the message domain then applies the real one (libphonenumber).
_TUTORIAL_E164 = re.compile(r"^\+[1-9]\d{1,14}$")

_REQUEST_EXAMPLE = {"recipient": "+46701234567", "message": "Hello from Sinch!"}
_SENT = "SMS submitted successfully."
_FAILED = "Failed to send SMS."


class LegacyBatchOut(ResponseModel):
    """Sinch's batch as Sinch answered it, less its `callback_url` (the gateway's own webhook);
    only `id` when Sinch accepted the batch but its details could not be read back."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(description="Sinch's batch id.", examples=["01M8D764BAM688PXZW36THTTKF"])


class LegacySentOut(ResponseModel):
    """The tutorial's 200: Sinch has the batch."""

    message: Literal["SMS submitted successfully."]
    details: LegacyBatchOut
    correlationId: str = Field(description="The request id, as in `X-Request-ID`.")


class LegacyProblem(Problem):
    """A problem document that also carries the tutorial's `error` and `correlationId`, so
    clients of either kind read it (both absent only when the body is not JSON at all)."""

    model_config = ConfigDict(
        json_schema_serialization_defaults_required=True,
        # Replaces Problem's own hook, so its optional batch_id is named again here.
        json_schema_extra=lambda schema: _optional(schema, "error", "correlationId", "batch_id"),
    )

    error: str = Field("", examples=["Invalid recipient phone number format."])
    correlationId: str = Field("", description="The request id, as in `X-Request-ID`.")


def _optional(schema: dict[str, Any], *names: str) -> None:
    schema["required"] = [name for name in schema.get("required", []) if name not in names]


def _legacy_answer(description: str) -> dict[str, Any]:
    return {"description": description, "model": LegacyProblem}


@router.get(
    "/",
    operation_id="getTutorialRoot",
    summary="Says the gateway is running (as the tutorial's GET /)",
    response_class=PlainTextResponse,
)
async def root() -> PlainTextResponse:
    """Plain text, like the tutorial's Express server."""
    return PlainTextResponse("Sinch SMS API Server is running!")


@router.post(
    "/send-sms",
    operation_id="sendSms",
    summary="The tutorial's endpoint: send one SMS and wait until Sinch has it",
    deprecated=True,
    response_model=LegacySentOut,
    responses={
        200: {"description": "Sinch accepted the batch"},
        400: _legacy_answer(
            "The tutorial's checks (`invalid_request`), the gateway's (their own codes, "
            "which `/v1/messages` answers 422), or an opted-out recipient (`opted_out`)"
        ),
        401: {"description": "Missing or wrong API key"},
        403: {"description": "The API key lacks the `send` scope (a problem document)"},
        500: _legacy_answer("`send_failed`: Sinch did not accept it (in time)"),
    },
    openapi_extra={
        **AUTHENTICATED,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["recipient", "message"],
                        "properties": {
                            "recipient": {"type": "string", "pattern": r"^\+[1-9]\d{1,14}$"},
                            "message": {"type": "string", "minLength": 1, "pattern": r"\S"},
                        },
                    },
                    "example": _REQUEST_EXAMPLE,
                }
            },
        },
    },
)
async def send_sms(
    key: SendKey,
    response: Response,
    state: StateDep,
    payload: Annotated[Any, Body(examples=[_REQUEST_EXAMPLE])] = None,
) -> JSONResponse:
    """Deprecated: use `POST /v1/messages`. Body `{"recipient": "+1...", "message": "..."}`.
    Answers 200 `{"message": "SMS submitted successfully.", "details": <Sinch batch, less its
    callback_url>, "correlationId"}` once Sinch accepted it; 400 `{"error", "correlationId"}`
    (inside a problem document) for a refusal: the tutorial's validation failures, the
    gateway's, or a recipient who opted out; 500 `{"error": "Failed to send SMS.",
    "correlationId"}` (also a problem) otherwise. The message is stored before it is sent, as
    on `/v1/messages`; a 500 after a time-out does not unsend it."""
    correlation_id = request_id_var.get() or ""
    recipient = payload.get("recipient") if isinstance(payload, dict) else None
    message = payload.get("message") if isinstance(payload, dict) else None
    if not recipient or not isinstance(recipient, str):
        return _bad("Missing or invalid `recipient` field (must be a string).", "recipient")
    if not message or not isinstance(message, str):
        return _bad("Missing or invalid `message` field (must be a string).", "message")
    if not _TUTORIAL_E164.match(recipient):
        return _bad(
            "Invalid recipient phone number format. Use E.164 format (e.g., +15551234567).",
            "recipient",
        )
    if not message.strip():
        return _bad("Message body cannot be empty.", "message")
    try:
        draft = MessageIn(to=[recipient], body=message)
    except ValidationError as exc:
        # The tutorial's checks passed, the gateway's (control characters, ...) did not.
        first = exc.errors(include_url=False)[0]
        return _bad(str(first["msg"]), "message", str(first["type"]))
    try:
        outcome = await send_and_wait(
            state.accept,
            state.pool,
            state.sinch,
            accept_request(draft),
            key,
            wait_seconds=state.settings.legacy_wait_seconds,
        )
    except DomainError as exc:
        return _bad(exc.message, _legacy_field(exc.field), exc.code)
    if outcome.opted_out:
        answer = _bad(outcome.reason or "The recipient has opted out.", "recipient", "opted_out")
    elif outcome.batch is None:
        answer = _problem(500, "send_failed", _FAILED, outcome.reason or _FAILED)
    else:
        answer = JSONResponse(
            {"message": _SENT, "details": outcome.batch, "correlationId": correlation_id},
            status_code=200,
        )
    # A returned response does not get the headers dependencies set (RateLimit-*).
    answer.headers.update(response.headers)
    return answer


def _bad(error: str, field: str | None, code: str = "invalid_request") -> JSONResponse:
    located = "body" if field is None else f"body.{field}"
    return _problem(400, code, error, error, [{"field": located, "code": code, "message": error}])


# The tutorial's body has two fields; a refusal about anything else (the default sender, which
# this route always sends from) is about the request as a whole, located as "body" like a
# field-less refusal on /v1/messages.
_LEGACY_FIELDS = {"to": "recipient", "body": "message"}


def _legacy_field(field: str | None) -> str | None:
    """The tutorial body's name for a domain refusal's field; None when it has none."""
    return _LEGACY_FIELDS.get(field or "")


def _problem(
    status: int, code: str, error: str, detail: str, errors: list[dict[str, str]] | None = None
) -> JSONResponse:
    # The tutorial's body, inside an RFC 9457 problem document: both kinds of client read it.
    problem = build_problem(
        status,
        code,
        detail,
        instance="/send-sms",
        extra={"error": error, "correlationId": request_id_var.get() or ""},
    )
    if errors is not None:
        problem["errors"] = errors
    return JSONResponse(problem, status_code=status, media_type=PROBLEM_MEDIA_TYPE)
