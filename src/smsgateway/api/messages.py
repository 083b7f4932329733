"""``/v1/messages``: send, preview, read, list and cancel messages."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, cast
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response

from smsgateway.api.auth import AUTHENTICATED, ReadKey, SendKey
from smsgateway.api.callbacks import refuse_callback_url
from smsgateway.api.deps import AppState, PoolDep, StateDep, state_of
from smsgateway.api.message_content import (
    PreviewRecipients,
    binary_input,
    media_content,
    rich_preview_out,
    stored_content_out,
)
from smsgateway.api.pagination import decode_uuid_cursor, encode_cursor
from smsgateway.api.problems import ProblemError, problem_responses
from smsgateway.api.schemas import (
    CostOut,
    CountryCostOut,
    DeliveryReportMode,
    DuplicateRecipientOut,
    EncodingName,
    Instant,
    LimitedRecipientOut,
    LimitRefusal,
    MessageEventOut,
    MessageIdPath,
    MessageIn,
    MessageOut,
    MessagePage,
    MessageRecipientOut,
    PreviewOut,
    RecipientOut,
    RecipientRefusal,
    RefusedRecipientOut,
    ReplacementOut,
    SenderOut,
)
from smsgateway.domain.pricing import CostEstimate
from smsgateway.domain.status import MessageStatus, RecipientStatus
from smsgateway.services import messages as messages_service
from smsgateway.services.accept import AcceptRequest, Preview, fingerprint
from smsgateway.services.drafting import DraftRequest, MessageDraft
from smsgateway.services.messages import SinchLookupFailedError
from smsgateway.services.protection import LimitedRecipient
from smsgateway.store.api_keys import ApiKeyRecord
from smsgateway.store.cancellation import NotCancellableError
from smsgateway.store.messages import (
    MessageFilter,
    MessageRecord,
    NewMessage,
)

router = APIRouter(prefix="/v1/messages", tags=["messages"])

# A cancel after an unknown outcome waits this long for Sinch's answer before giving up.
CANCEL_LOOKUP_TIMEOUT_SECONDS = 5.0


@router.post(
    "",
    operation_id="sendMessage",
    status_code=202,
    response_model=MessageOut,
    summary="Send a message: stored durably, then handed to Sinch by the dispatcher",
    responses=problem_responses(401, 403, 413, 422, 429, 503),
    openapi_extra=AUTHENTICATED,
)
async def send_message(
    message: MessageIn,
    key: SendKey,
    request: Request,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=r"^[\x21-\x7e]{1,255}$",
            description="Retry-safe sending: the same key and body within 24 h return the "
            "first answer instead of sending again. 1 to 255 printable ASCII characters.",
        ),
    ] = None,
) -> Response:
    """Answers 202 once the message, its recipients and its outbox entry are committed to
    Postgres; `Location` names the message. Every recipient must be valid (each refusal is
    listed by index). The Sinch batch id appears on the message once Sinch has accepted it.
    On a real Sinch account whose plan declares no default originator, a message with no
    `from` and no configured default sender is refused: 422 `sender_required`, field `from`.
    A sender (named, or the default) assigned to another tenant is 422
    `sender_of_another_tenant`: its replies and STOPs are that tenant's."""
    status, body, headers = await send_answer(
        state_of(request), message, key, idempotency_key, response.headers
    )
    return Response(body, status_code=status, headers=headers, media_type="application/json")


async def send_answer(
    state: AppState,
    message: MessageIn,
    key: ApiKeyRecord,
    idempotency_key: str | None,
    headers: Mapping[str, str],
) -> tuple[int, bytes, dict[str, str]]:
    """Sends ``message`` for ``key``: the answer's status, JSON body and headers (``headers``,
    the ``RateLimit-*`` ones admission set, and ``Location``). Shared by the route and the
    send lane (``api.send_lane``), so that both answer alike."""
    if message.callback_url is not None:
        refuse_callback_url(str(message.callback_url), state.callbacks)
    accepted = await state.accept.accept(
        accept_request(message, idempotent=idempotency_key is not None), key, idempotency_key
    )
    answer_headers = dict(headers)
    answer_headers["Location"] = f"/v1/messages/{accepted.message.id}"
    if accepted.replayed:
        answer_headers["Idempotent-Replayed"] = "true"
    # Serialised here, not returned as a model: FastAPI would validate it a second time,
    # which was a quarter of the CPU an accept costs.
    return 202, message_out(accepted.message).model_dump_json().encode(), answer_headers


@router.get(
    # :uuid so that /v1/messages/preview is never read as an id (GET on it is a 405).
    "/{message_id:uuid}",
    operation_id="getMessage",
    summary="A message with each recipient's status and its event history",
    responses=problem_responses(401, 403, 404, 429, 503),
    openapi_extra=AUTHENTICATED,
)
async def get_message(message_id: MessageIdPath, key: ReadKey, pool: PoolDep) -> MessageOut:
    """Only the messages of the caller's tenant exist for it: another tenant's id is a 404."""
    record = await messages_service.find_message(pool, key.tenant, message_id)
    if record is None:
        raise _not_found(message_id)
    return message_out(record, with_events=True)


@router.get(
    "",
    operation_id="listMessages",
    summary="The tenant's messages, newest first, with filters and a cursor",
    responses=problem_responses(401, 403, 422, 429, 503),
    openapi_extra=AUTHENTICATED,
)
async def list_messages(
    key: ReadKey,
    pool: PoolDep,
    status: Annotated[
        MessageStatus | None, Query(description="Only messages with this status.")
    ] = None,
    recipient: Annotated[
        str | None, Query(description="Only messages to this number, E.164: +46701234567.")
    ] = None,
    client_reference: Annotated[
        str | None,
        Query(max_length=256, description="Only messages with this `client_reference`."),
    ] = None,
    created_after: Annotated[
        Instant | None,
        Query(description="Only messages created at or after this instant (with an offset)."),
    ] = None,
    created_before: Annotated[
        Instant | None,
        Query(description="Only messages created before this instant (with an offset)."),
    ] = None,
    created_from: Annotated[
        Instant | None,
        Query(alias="from", deprecated=True, description="Old name of `created_after`."),
    ] = None,
    created_to: Annotated[
        Instant | None,
        Query(alias="to", deprecated=True, description="Old name of `created_before`."),
    ] = None,
    cursor: Annotated[
        str | None,
        Query(min_length=1, description="The previous page's `next`; leave out for the first."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Messages per page.")] = 50,
) -> MessagePage:
    """Keyset pagination: pass the previous page's `next` as `cursor` until it is null.
    `from` and `to` are the old names of `created_after` and `created_before` (the new
    name wins when both are given)."""
    records = await messages_service.find_messages(
        pool,
        MessageFilter(
            tenant=key.tenant,
            status=status,
            recipient=recipient,
            client_reference=client_reference,
            created_from=created_after or created_from,
            created_to=created_before or created_to,
            before=None if cursor is None else decode_uuid_cursor(cursor),
            limit=limit + 1,
        ),
    )
    page = records[:limit]
    has_more = len(records) > limit
    return MessagePage(
        items=[message_out(record) for record in page],
        next=encode_cursor(page[-1].created_at, str(page[-1].id)) if has_more and page else None,
    )


@router.post(
    "/{message_id}/cancel",
    operation_id="cancelMessage",
    summary="Cancel a queued or scheduled message",
    responses=problem_responses(401, 403, 404, 409, 429, 503),
    openapi_extra=AUTHENTICATED,
)
async def cancel_message(message_id: MessageIdPath, key: SendKey, state: StateDep) -> MessageOut:
    """Works while the message waits in the gateway (queued, or scheduled for later). After a
    send attempt whose outcome is unknown, the gateway first asks Sinch (by
    `client_reference`): if Sinch holds a batch the answer is 409 `not_cancellable` with its
    `batch_id` (the message is on its way), otherwise the message is cancelled. 409 also
    while a send is in flight, or once the message was handed to Sinch or has ended; 503
    `sinch_unavailable` when Sinch cannot be asked (nothing changed: try again)."""
    settings = state.settings
    try:
        record = await messages_service.cancel_message(
            state.pool,
            state.sinch,
            key.tenant,
            message_id,
            lease_seconds=settings.dispatch_lease_seconds,
            lookup_timeout_seconds=CANCEL_LOOKUP_TIMEOUT_SECONDS,
        )
    except NotCancellableError as exc:
        raise _not_cancellable(exc) from exc
    except SinchLookupFailedError as exc:
        raise ProblemError(
            503,
            "sinch_unavailable",
            "An earlier send attempt may have reached Sinch, and Sinch could not be asked "
            "whether it did; nothing was changed. Try again.",
            headers={"Retry-After": "5"},
        ) from exc
    if record is None:
        raise _not_found(message_id)
    return message_out(record, with_events=True)


def _not_cancellable(exc: NotCancellableError) -> ProblemError:
    if exc.batch_id is not None:
        return ProblemError(
            409,
            "not_cancellable",
            f"Sinch already holds the message as batch {exc.batch_id}: it is being delivered.",
            extra={"batch_id": exc.batch_id},
        )
    if exc.status == "sending":
        detail = (
            "The message is sending: an attempt is in flight, so it can no longer be cancelled."
        )
    else:
        detail = f"The message is {exc.status}; only queued or scheduled messages can be cancelled."
    return ProblemError(409, "not_cancellable", detail)


def _not_found(message_id: UUID) -> ProblemError:
    return ProblemError(404, "message_not_found", f"There is no message {message_id}.")


def accept_request(message: MessageIn, *, idempotent: bool = False) -> AcceptRequest:
    """The service's request; with ``idempotent``, the body's fingerprint too (only an
    Idempotency-Key needs it, and it costs a full dump of the body)."""
    digest = None
    if idempotent:
        canonical = json.dumps(
            message.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":")
        )
        digest = fingerprint(canonical.encode())
    return AcceptRequest(
        draft=draft_request(message),
        client_reference=message.client_reference,
        send_at=message.send_at,
        expire_at=message.expire_at,
        callback_url=None if message.callback_url is None else str(message.callback_url),
        delivery_report=message.delivery_report,
        fingerprint=digest,
    )


def message_out(message: MessageRecord | NewMessage, *, with_events: bool = False) -> MessageOut:
    if isinstance(message, NewMessage):
        message = message.as_stored()
    return MessageOut(
        id=message.id,
        status=MessageStatus(message.status),
        status_code=message.status_code,
        status_detail=message.status_detail,
        recipients=[
            MessageRecipientOut(
                to=recipient.msisdn,
                status=RecipientStatus(recipient.status),
                code=recipient.sinch_code,
                status_at=recipient.status_at,
                updated_at=recipient.updated_at,
            )
            for recipient in message.recipients
        ],
        sender=message.sender,
        body=message.body,
        redacted=message.redacted_at is not None,
        redacted_at=message.redacted_at,
        encoding=cast(EncodingName, message.encoding),
        **stored_content_out(message.kind, message.body, message.content),
        segments=message.segment_count,
        characters=message.character_count,
        client_reference=message.client_reference,
        sinch_batch_id=message.sinch_batch_id,
        delivery_report=cast(DeliveryReportMode, message.delivery_report),
        send_at=message.send_at,
        expire_at=message.expire_at,
        callback_url=message.callback_url,
        created_at=message.created_at,
        updated_at=message.updated_at,
        submitted_at=message.submitted_at,
        events=[
            MessageEventOut(
                id=event.id,
                kind=event.kind,
                recipient=event.recipient,
                status=event.status,
                code=event.sinch_code,
                detail=event.detail,
                occurred_at=event.occurred_at,
            )
            for event in message.events
        ]
        if with_events
        else None,
    )


@router.post(
    "/preview",
    operation_id="previewMessage",
    summary="Preview a message: recipients, encoding, parts and cost, without sending",
    responses=problem_responses(401, 403, 413, 422, 429),
    openapi_extra=AUTHENTICATED,
)
async def preview_message(message: MessageIn, key: ReadKey, request: Request) -> PreviewOut:
    """Checks a message exactly as sending would and says what would happen. Nothing is stored,
    sent, or taken from any limit. Refused recipients are listed with their reasons; a body
    that cannot be sent, or a request that is malformed, is a 422 problem naming each failing
    field (`sender_required` on `from` when sending would have no sender, as for
    `POST /v1/messages`). Recipients the caller's destination policy refuses are listed in
    `refused` with `country_not_allowed` or `number_type_not_allowed`; those its velocity
    limits or spend caps would refuse if sent now are listed in `limited` with
    `velocity_limited` or `spend_cap_reached` and the seconds until that may change. A number
    assigned to another tenant is refused as sending refuses it (`sender_of_another_tenant`)."""
    state = state_of(request)
    preview = await state.accept.preview(draft_request(message), key)
    await state.senders.check(preview.draft.sender, key, default=message.sender is None)
    return preview_out(preview)


def draft_request(message: MessageIn) -> DraftRequest:
    return DraftRequest(
        to=message.to,
        body=message.body,
        sender=message.sender,
        region=message.region,
        smart_encoding=message.smart_encoding,
        max_segments=message.max_segments,
        parameters=message.parameters,
        media=media_content(message.media),
        binary=binary_input(message.binary),
    )


def preview_out(preview: Preview) -> PreviewOut:
    draft = preview.draft
    recipients_out = preview_recipients(draft, preview.limited)
    if draft.body is None:
        return rich_preview_out(draft, recipients_out, cost_out(draft.cost))
    segmentation = draft.body.segmentation
    return PreviewOut(
        **recipients_out,
        text=draft.body.text,
        encoding=segmentation.encoding.value,
        segments=draft.segments,
        total_segments=draft.total_segments,
        characters=segmentation.characters,
        units=segmentation.units,
        units_per_segment=segmentation.units_per_part,
        parts=list(segmentation.split_parts()),
        replacements=[
            ReplacementOut(
                position=replacement.position,
                original=replacement.original,
                replacement=replacement.replacement,
            )
            for replacement in draft.body.replacements
        ],
        cost=cost_out(draft.cost),
        parameters=draft.parameters,
    )


def preview_recipients(
    draft: MessageDraft, limited: tuple[LimitedRecipient, ...]
) -> PreviewRecipients:
    """The preview's fields about who receives it and from whom (any kind of message)."""
    recipients = draft.recipients
    return PreviewRecipients(
        recipients=[
            RecipientOut(
                index=accepted.index,
                input=accepted.raw,
                e164=accepted.number.e164,
                region=accepted.number.region,
                type=accepted.number.number_type,
            )
            for accepted in recipients.accepted
        ],
        refused=[
            RefusedRecipientOut(
                index=refused.index,
                input=refused.raw,
                code=RecipientRefusal(refused.code),
                message=refused.message,
            )
            for refused in recipients.refused
        ],
        limited=[
            LimitedRecipientOut(
                index=recipient.index,
                input=recipient.raw,
                code=LimitRefusal(recipient.code),
                message=recipient.message,
                retry_after=recipient.retry_after,
            )
            for recipient in limited
        ],
        duplicates=[
            DuplicateRecipientOut(
                index=duplicate.index,
                input=duplicate.raw,
                e164=duplicate.e164,
                first_index=duplicate.first_index,
            )
            for duplicate in recipients.duplicates
        ],
        duplicates_removed=recipients.duplicates_removed,
        sender=None
        if draft.sender is None
        else SenderOut(value=draft.sender.value, kind=draft.sender.kind),
    )


def cost_out(cost: CostEstimate | None) -> CostOut | None:
    return (
        None
        if cost is None
        else CostOut(
            currency=cost.currency,
            total=cost.total,
            complete=cost.complete,
            countries=[
                CountryCostOut(
                    country_code=line.country_code,
                    recipients=line.recipients,
                    segments=line.segments,
                    unit_price=line.unit_price,
                    cost=line.cost,
                )
                for line in cost.lines
            ],
            unknown_country_codes=list(cost.unknown_country_codes),
        )
    )
