"""Read, list and cancel a tenant's messages."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from typing import TYPE_CHECKING

import asyncpg

from smsgateway.sinch.client import LOOKUP_MARGIN
from smsgateway.sinch.errors import SinchError
from smsgateway.store import cancellation
from smsgateway.store import messages as store
from smsgateway.store.cancellation import CancelClaim, NotCancellableError
from smsgateway.store.errors import UNAVAILABLE_ERRORS, DatabaseUnavailableError
from smsgateway.store.messages import MessageFilter, MessageRecord

if TYPE_CHECKING:
    from smsgateway.sinch.client import SinchClient

logger = logging.getLogger(__name__)

ACQUIRE_TIMEOUT_SECONDS = 1.0


class SinchLookupFailedError(Exception):
    """Sinch could not be asked whether an earlier attempt reached it: nothing was changed."""


async def find_message(
    pool: asyncpg.Pool, tenant: str, message_id: uuid.UUID
) -> MessageRecord | None:
    try:
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
            return await store.get_message(connection, tenant, message_id)
    except UNAVAILABLE_ERRORS as exc:
        raise DatabaseUnavailableError(str(exc) or type(exc).__name__) from exc


async def find_messages(pool: asyncpg.Pool, where: MessageFilter) -> list[MessageRecord]:
    try:
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
            return await store.list_messages(connection, where)
    except UNAVAILABLE_ERRORS as exc:
        raise DatabaseUnavailableError(str(exc) or type(exc).__name__) from exc


async def cancel_message(
    pool: asyncpg.Pool,
    sinch: SinchClient,
    tenant: str,
    message_id: uuid.UUID,
    *,
    lease_seconds: float,
    lookup_timeout_seconds: float,
) -> MessageRecord | None:
    """The cancelled message, None if the tenant has no such message.

    Cancels at once while no send attempt has touched the message. After an attempt whose
    outcome is unknown, it asks Sinch first: a batch there means the message is on its way
    (``NotCancellableError("submitted", batch_id)``; the dispatcher records it); none means
    it is cancelled. Raises ``NotCancellableError`` once it is being sent or has ended, and
    ``SinchLookupFailedError`` when Sinch cannot be asked (nothing changed; ask again).
    """
    try:
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
            started = await cancellation.start_cancel(
                connection,
                tenant,
                message_id,
                lease_seconds=lease_seconds,
                claimed_by=f"cancel:{os.getpid()}",
            )
            if started is False:
                return None
        if isinstance(started, CancelClaim):
            await _resolve_then_cancel(pool, sinch, started, lookup_timeout_seconds)
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
            return await store.get_message(connection, tenant, message_id)
    except UNAVAILABLE_ERRORS as exc:
        raise DatabaseUnavailableError(str(exc) or type(exc).__name__) from exc


async def _resolve_then_cancel(
    pool: asyncpg.Pool, sinch: SinchClient, claim: CancelClaim, timeout_seconds: float
) -> None:
    """Asks Sinch for a batch of an earlier attempt, holding no connection meanwhile; cancels
    if there is none, else hands the message back to the dispatcher and refuses."""
    try:
        async with asyncio.timeout(timeout_seconds):
            batch = await sinch.find_batch(
                str(claim.message_id), start_date=claim.created_at - LOOKUP_MARGIN
            )
    except (SinchError, TimeoutError) as exc:
        logger.warning("message %s: cancel could not ask Sinch: %s", claim.message_id, exc)
        await _give_back(pool, claim)
        raise SinchLookupFailedError(str(exc) or type(exc).__name__) from exc
    if batch is not None:
        await _give_back(pool, claim)
        raise NotCancellableError("submitted", batch.id)
    async with pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
        await cancellation.finish_cancel(connection, claim)


async def _give_back(pool: asyncpg.Pool, claim: CancelClaim) -> None:
    # If this fails, the claim's lease ends by itself and the dispatcher resumes then.
    async with pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
        await cancellation.give_back(connection, claim)
