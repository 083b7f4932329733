"""Idempotency keys: one accepted message per (API key, Idempotency-Key) for 24 hours.

Expired keys are deleted by the retention job (``store.retention``).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from smsgateway.store.messages import NewMessage, insert_accepted

if TYPE_CHECKING:
    from smsgateway.store.pool import Connection

KEPT_HOURS = 24


@dataclass(frozen=True)
class StoredKey:
    request_hash: bytes
    message_id: uuid.UUID


class _KeyTakenError(Exception):
    """Another request committed this key first; rolls our insert back."""


async def insert_accepted_once(
    connection: Connection,
    message: NewMessage,
    *,
    api_key_id: uuid.UUID,
    idempotency_key: str,
    request_hash: bytes,
    write: Callable[[Connection, list[NewMessage]], Awaitable[None]] = insert_accepted,
) -> StoredKey | None:
    """Stores ``message`` under the key (with ``write``), or returns what the key already
    holds (and stores nothing). Two concurrent requests with one key store exactly one
    message: the second waits on the key's row, finds it taken, and rolls back."""
    existing = await _find(connection, api_key_id, idempotency_key)
    if existing is not None:
        return existing
    try:
        async with connection.transaction():
            await connection.execute(
                "DELETE FROM idempotency_key WHERE api_key_id = $1 AND idempotency_key = $2"
                f" AND created_at <= now() - interval '{KEPT_HOURS} hours'",
                api_key_id,
                idempotency_key,
            )
            await write(connection, [message])
            reserved = await connection.fetchval(
                "INSERT INTO idempotency_key (api_key_id, idempotency_key, request_hash,"
                " message_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
                api_key_id,
                idempotency_key,
                request_hash,
                message.id,
            )
            if not reserved:
                raise _KeyTakenError
    except _KeyTakenError:
        taken = await _find(connection, api_key_id, idempotency_key)
        assert taken is not None, "a key that conflicted must exist"
        return taken
    return None


async def _find(connection: Connection, api_key_id: uuid.UUID, key: str) -> StoredKey | None:
    row = await connection.fetchrow(
        "SELECT request_hash, message_id FROM idempotency_key"
        " WHERE api_key_id = $1 AND idempotency_key = $2"
        f" AND created_at > now() - interval '{KEPT_HOURS} hours'",
        api_key_id,
        key,
    )
    return None if row is None else StoredKey(bytes(row["request_hash"]), row["message_id"])
