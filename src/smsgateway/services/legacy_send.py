"""The Express tutorial's ``POST /send-sms``: accept durably, then wait until Sinch has it.

The tutorial answered only after Sinch accepted the batch; callers migrating from it expect
that. The message takes the same durable path as ``/v1/messages``, and this waits (with a
deadline) for the dispatcher to record the Sinch batch, then fetches the batch from Sinch.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from smsgateway.observability.masking import mask_webhook_secrets
from smsgateway.services.accept import AcceptRequest, AcceptService
from smsgateway.sinch import SinchClient, SinchError
from smsgateway.store.api_keys import ApiKeyRecord
from smsgateway.store.errors import UNAVAILABLE_ERRORS
from smsgateway.store.messages import get_message

_FIRST_POLL_SECONDS = 0.02
_LONGEST_POLL_SECONDS = 0.25
_ENDED = frozenset({"rejected", "failed", "expired", "cancelled"})


_OPTED_OUT = "opted_out"


@dataclass(frozen=True)
class LegacyOutcome:
    """``batch`` is Sinch's batch as JSON when it was accepted; ``message_id`` is ours.
    ``opted_out``: nothing was sent because the recipient opted out (a refusal, not a fault)."""

    message_id: uuid.UUID
    batch: dict[str, Any] | None
    reason: str | None = None
    opted_out: bool = False


async def send_and_wait(
    accept: AcceptService,
    pool: asyncpg.Pool,
    sinch: SinchClient,
    request: AcceptRequest,
    key: ApiKeyRecord,
    *,
    wait_seconds: float,
) -> LegacyOutcome:
    accepted = await accept.accept(request, key, idempotency_key=None)
    message_id = accepted.message.id
    if accepted.message.status == "rejected":
        # Accept rejects a message at once only when every recipient has opted out.
        return _opted_out(message_id)
    deadline = time.monotonic() + wait_seconds
    pause = _FIRST_POLL_SECONDS
    while time.monotonic() < deadline:
        await asyncio.sleep(pause)
        pause = min(pause * 2, _LONGEST_POLL_SECONDS)
        try:
            async with pool.acquire(timeout=1.0) as connection:
                record = await get_message(connection, key.tenant, message_id, with_events=False)
        except UNAVAILABLE_ERRORS:
            continue
        if record is None:
            break
        if record.sinch_batch_id is not None:
            return LegacyOutcome(message_id, await _batch(sinch, record.sinch_batch_id))
        if record.status in _ENDED:
            if record.status_code == _OPTED_OUT:
                # The STOP came after the accept; the dispatcher left the recipient out.
                return _opted_out(message_id)
            return LegacyOutcome(message_id, None, record.status_detail or record.status)
    return LegacyOutcome(message_id, None, "Sinch had not accepted the message in time")


def _opted_out(message_id: uuid.UUID) -> LegacyOutcome:
    return LegacyOutcome(
        message_id,
        None,
        "The recipient has opted out (sent STOP); the message was not sent.",
        opted_out=True,
    )


async def _batch(sinch: SinchClient, batch_id: str) -> dict[str, Any]:
    try:
        batch = await sinch.get_batch(batch_id)
    except SinchError:
        # Sinch accepted it; only the details are missing. The id is what callers use.
        return {"id": batch_id}
    # The batch's callback_url is the gateway's own webhook, whose path holds a secret: it is
    # no business of the caller's, and any other field is scrubbed of it all the same.
    details = batch.model_dump(
        mode="json", by_alias=True, exclude_none=True, exclude={"callback_url"}
    )
    details.pop("callback_url", None)
    scrubbed: dict[str, Any] = _without_webhook_secrets(details)
    return scrubbed


def _without_webhook_secrets(value: Any) -> Any:
    if isinstance(value, str):
        return mask_webhook_secrets(value)
    if isinstance(value, dict):
        return {key: _without_webhook_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_webhook_secrets(item) for item in value]
    return value
