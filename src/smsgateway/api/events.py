"""``/v1/events``: the caller's tenant's own callback events (``message.inbound``,
``opt_out.changed``), their attempts, and replay.

They are sent, signed and retried as status callbacks are, to the tenant's callback URL
(``smsgateway tenant callback``); message status events stay under ``/v1/messages/{id}``.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query
from pydantic import Field

from smsgateway.api.auth import AUTHENTICATED, ReadKey, SendKey
from smsgateway.api.callbacks import CallbackEventOut, CallbackReplayOut, event_out
from smsgateway.api.deps import PoolDep
from smsgateway.api.problems import ProblemError, problem_responses
from smsgateway.api.schemas import ResponseModel
from smsgateway.services import tenancy as service
from smsgateway.store.callbacks import ReplayRefusal

router = APIRouter(prefix="/v1/events", tags=["callbacks"])


class EventPage(ResponseModel):
    items: list[CallbackEventOut]
    next: str | None = Field(
        None, description="Pass as `cursor` for the next (older) page; null at the end."
    )


@router.get(
    "",
    summary="Your tenant's inbound and opt-out events, newest first, with every attempt",
    operation_id="listEvents",
    responses=problem_responses(401, 403, 422, 429, 503),
    openapi_extra=AUTHENTICATED,
)
async def list_events(
    key: ReadKey,
    pool: PoolDep,
    cursor: Annotated[
        str | None,
        Query(pattern=r"^[1-9][0-9]{0,17}$", description="`next` from the previous page"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Events per page, at most 100.")] = 50,
) -> EventPage:
    """Events of the tenant's own stream (`message.inbound`, `opt_out.changed`), numbered by
    `sequence` in the order they happened and delivered in that order."""
    events = await service.list_events(
        pool,
        key.tenant,
        before_sequence=None if cursor is None else int(cursor),
        limit=limit + 1,
    )
    page = events[:limit]
    last = page[-1] if page and len(events) > limit else None
    return EventPage(
        items=[event_out(event) for event in page],
        next=None if last is None else str(last.sequence),
    )


@router.post(
    "/{event_id}/replay",
    status_code=202,
    summary="Send a delivered or failed tenant event again",
    operation_id="replayEvent",
    responses=problem_responses(401, 403, 404, 409, 429, 503),
    openapi_extra=AUTHENTICATED,
)
async def replay_event(
    event_id: Annotated[UUID, Path(description="The event's id, as listed.")],
    key: SendKey,
    pool: PoolDep,
) -> CallbackReplayOut:
    """The same event (same id, same body) is queued again, due now, with a fresh retry
    horizon; 409 `callback_pending` while it is still queued."""
    refusal = await service.replay_event(pool, key.tenant, event_id)
    if refusal is ReplayRefusal.NOT_FOUND:
        raise ProblemError(404, "callback_not_found", f"Your tenant has no event {event_id}.")
    if refusal is ReplayRefusal.PENDING:
        raise ProblemError(
            409, "callback_pending", "The event is still queued; it will be sent (again) anyway."
        )
    return CallbackReplayOut(id=event_id)
