"""``/v1/messages/{id}/callbacks``: a message's status-callback events, their attempts, replay.

Also the accept-time check of a message's ``callback_url`` (``refuse_callback_url``).
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Path
from pydantic import AwareDatetime, Field, JsonValue, WithJsonSchema

from smsgateway.api.auth import AUTHENTICATED, ReadKey, SendKey
from smsgateway.api.deps import PoolDep
from smsgateway.api.outgoing_webhooks import OUTGOING_BODY_SCHEMA
from smsgateway.api.problems import ProblemError, ProblemField, problem_responses
from smsgateway.api.schemas import MessageIdPath, ResponseModel
from smsgateway.domain.callback_targets import TargetRefusal
from smsgateway.services import callbacks as service
from smsgateway.services.callbacks import NOT_CONFIGURED, CallbackPolicy
from smsgateway.store.callbacks import CallbackEvent, ReplayRefusal

router = APIRouter(prefix="/v1/messages", tags=["callbacks"])

_REFUSALS = {
    NOT_CONFIGURED: "Status callbacks are not configured on this gateway "
    "(SMSGW_CALLBACK_SIGNING_SECRETS is not set).",
    TargetRefusal.SCHEME.value: "The callback URL must be http or https.",
    TargetRefusal.NO_HOST.value: "The callback URL has no valid host or port.",
    TargetRefusal.PRIVATE.value: "The callback URL points at a private, loopback or link-local "
    "address; callbacks go to public addresses only.",
}


class CallbackAttemptOut(ResponseModel):
    attempt: int = Field(description="1 for the first POST of the event.", examples=[1])
    outcome: Literal["delivered", "retry", "failed"]
    status_code: int | None = Field(description="The receiver's answer; null if none came.")
    error: str | None = Field(examples=["HTTP 503"])
    duration_ms: float
    attempted_at: AwareDatetime


class CallbackEventOut(ResponseModel):
    """One callback event (a status change, or a tenant's inbound or opt-out change): what is
    (re)sent, where, and how it went."""

    id: UUID = Field(description="Stable; also sent as the `webhook-id` header.")
    sequence: int = Field(description="The event's place in its message's (or tenant's), from 1.")
    url: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    replays: int
    next_attempt_at: AwareDatetime | None = Field(description="When a pending event is due.")
    last_status_code: int | None
    last_error: str | None
    created_at: AwareDatetime
    delivered_at: AwareDatetime | None
    failed_at: AwareDatetime | None
    payload: Annotated[dict[str, JsonValue], WithJsonSchema(OUTGOING_BODY_SCHEMA)] = Field(
        description="The JSON body that is POSTed (one of the document's `webhooks`)."
    )
    attempt_log: list[CallbackAttemptOut]


class CallbackEventList(ResponseModel):
    items: list[CallbackEventOut]


class CallbackReplayOut(ResponseModel):
    id: UUID
    status: Literal["pending"] = "pending"


def refuse_callback_url(url: str, policy: CallbackPolicy) -> None:
    """Raises a 422 problem naming ``callback_url`` if callbacks may not go to ``url``."""
    code = service.callback_url_refusal(url, policy)
    if code is not None:
        message = _REFUSALS.get(code, "The callback URL is refused.")
        raise ProblemError(
            422,
            code,
            message,
            errors=[ProblemField(field="body.callback_url", code=code, message=message)],
        )


@router.get(
    "/{message_id}/callbacks",
    operation_id="listMessageCallbacks",
    summary="A message's status-callback events with every delivery attempt",
    responses=problem_responses(401, 403, 404, 429, 503),
    openapi_extra=AUTHENTICATED,
)
async def list_callbacks(
    message_id: MessageIdPath, key: ReadKey, pool: PoolDep
) -> CallbackEventList:
    """In sequence order; another tenant's message is a 404."""
    events = await service.list_callbacks(pool, key.tenant, message_id)
    if events is None:
        raise ProblemError(404, "message_not_found", f"There is no message {message_id}.")
    return CallbackEventList(items=[event_out(event) for event in events])


@router.post(
    "/{message_id}/callbacks/{event_id}/replay",
    operation_id="replayMessageCallback",
    status_code=202,
    summary="Send a delivered or failed callback event again",
    responses=problem_responses(401, 403, 404, 409, 429, 503),
    openapi_extra=AUTHENTICATED,
)
async def replay_callback(
    message_id: MessageIdPath,
    event_id: Annotated[UUID, Path(description="The callback event's id, as listed.")],
    key: SendKey,
    pool: PoolDep,
) -> CallbackReplayOut:
    """The same event (same id, same body) is queued again, due now, with a fresh retry
    horizon; 409 `callback_pending` while it is still queued."""
    refusal = await service.replay_callback(pool, key.tenant, message_id, event_id)
    if refusal is ReplayRefusal.NOT_FOUND:
        raise ProblemError(
            404, "callback_not_found", f"Message {message_id} has no callback event {event_id}."
        )
    if refusal is ReplayRefusal.PENDING:
        raise ProblemError(
            409, "callback_pending", "The event is still queued; it will be sent (again) anyway."
        )
    return CallbackReplayOut(id=event_id)


def event_out(event: CallbackEvent) -> CallbackEventOut:
    return CallbackEventOut(
        id=event.id,
        sequence=event.sequence,
        url=event.url,
        status=event.status,  # type: ignore[arg-type]
        attempts=event.attempts,
        replays=event.replays,
        next_attempt_at=event.due_at if event.status == "pending" else None,
        last_status_code=event.last_status_code,
        last_error=event.last_error,
        created_at=event.created_at,
        delivered_at=event.delivered_at,
        failed_at=event.failed_at,
        payload=event.payload,
        attempt_log=[
            CallbackAttemptOut(
                attempt=attempt.attempt,
                outcome=attempt.outcome,  # type: ignore[arg-type]
                status_code=attempt.status_code,
                error=attempt.error,
                duration_ms=attempt.duration_ms,
                attempted_at=attempt.attempted_at,
            )
            for attempt in event.attempt_log
        ],
    )
