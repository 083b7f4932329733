"""``/v1/messages``: preview (sending, reading and cancelling arrive with the sending issue)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from smsgateway.api.auth import CurrentKey
from smsgateway.api.problems import problem_responses
from smsgateway.api.schemas import (
    CostOut,
    CountryCostOut,
    DuplicateRecipientOut,
    MessageIn,
    PreviewOut,
    RecipientOut,
    RefusedRecipientOut,
    ReplacementOut,
    SenderOut,
)
from smsgateway.services.drafting import DraftRequest, MessageDraft, MessagePolicy, draft_message

router = APIRouter(prefix="/v1/messages", tags=["messages"])


def get_policy(request: Request) -> MessagePolicy:
    policy: MessagePolicy = request.state.app_state.policy
    return policy


PolicyDep = Annotated[MessagePolicy, Depends(get_policy)]


@router.post(
    "/preview",
    summary="Preview a message: recipients, encoding, parts and cost, without sending",
    responses=problem_responses(401, 413, 422),
)
async def preview_message(message: MessageIn, _: CurrentKey, policy: PolicyDep) -> PreviewOut:
    """Checks a message exactly as sending would and says what would happen. Nothing is stored
    or sent. Refused recipients are listed with their reasons; a body that cannot be sent, or a
    request that is malformed, is a 422 problem naming each failing field."""
    return preview_out(draft_message(draft_request(message), policy))


def draft_request(message: MessageIn) -> DraftRequest:
    return DraftRequest(
        to=message.to,
        body=message.body,
        sender=message.sender,
        region=message.region,
        smart_encoding=message.smart_encoding,
        max_segments=message.max_segments,
    )


def preview_out(draft: MessageDraft) -> PreviewOut:
    segmentation = draft.body.segmentation
    recipients = draft.recipients
    cost = draft.cost
    return PreviewOut(
        recipients=[
            RecipientOut(
                index=accepted.index,
                input=accepted.raw,
                e164=accepted.number.e164,
                region=accepted.number.region,
                type=str(accepted.number.number_type),
            )
            for accepted in recipients.accepted
        ],
        refused=[
            RefusedRecipientOut(
                index=refused.index, input=refused.raw, code=refused.code, message=refused.message
            )
            for refused in recipients.refused
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
        else SenderOut(value=draft.sender.value, kind=str(draft.sender.kind)),
        text=draft.body.text,
        encoding=segmentation.encoding.value,
        segments=segmentation.segments,
        total_segments=segmentation.segments * len(recipients.accepted),
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
        cost=None
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
        ),
    )
