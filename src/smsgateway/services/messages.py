"""Read, list and cancel a tenant's messages."""

from __future__ import annotations

import uuid

import asyncpg

from smsgateway.store import messages as store
from smsgateway.store.errors import UNAVAILABLE_ERRORS, DatabaseUnavailableError
from smsgateway.store.messages import MessageFilter, MessageRecord

ACQUIRE_TIMEOUT_SECONDS = 1.0


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
    pool: asyncpg.Pool, tenant: str, message_id: uuid.UUID
) -> MessageRecord | None:
    """The cancelled message, None if the tenant has no such message; raises
    ``NotCancellableError`` once it is being sent or has ended."""
    try:
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
            return await store.cancel_pending(connection, tenant, message_id)
    except UNAVAILABLE_ERRORS as exc:
        raise DatabaseUnavailableError(str(exc) or type(exc).__name__) from exc
