"""API keys as stored: only a SHA-256 hash of each key and a short visible prefix."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from smsgateway.store.pool import Connection

_COLUMNS = (
    "id, tenant, name, prefix, key_hash, rate_limit, created_at, revoked_at, default_callback_url,"
    " scopes"
)


@dataclass(frozen=True)
class ApiKeyRecord:
    id: uuid.UUID
    tenant: str
    name: str
    prefix: str
    key_hash: bytes
    rate_limit: str | None
    created_at: datetime
    revoked_at: datetime | None
    # Where status callbacks go for this key's messages that name no callback_url.
    default_callback_url: str | None = None
    # What the key may do (domain.api_keys.Scope values).
    scopes: frozenset[str] = frozenset({"send", "read", "admin"})

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ApiKeyNameTakenError(Exception):
    """Another key already has this name."""


async def insert_api_key(
    connection: Connection,
    *,
    tenant: str,
    name: str,
    prefix: str,
    key_hash: bytes,
    rate_limit: str | None,
    default_callback_url: str | None = None,
    scopes: Iterable[str] = ("send", "read"),
) -> ApiKeyRecord:
    try:
        row = await connection.fetchrow(
            f"INSERT INTO api_key"
            f" (id, tenant, name, prefix, key_hash, rate_limit, default_callback_url, scopes)"
            f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {_COLUMNS}",
            uuid.uuid4(),
            tenant,
            name,
            prefix,
            key_hash,
            rate_limit,
            default_callback_url,
            sorted(scopes),
        )
    except asyncpg.UniqueViolationError as exc:
        raise ApiKeyNameTakenError(name) from exc
    assert row is not None
    return _record(row)


async def find_api_key_by_prefix(connection: Connection, prefix: str) -> ApiKeyRecord | None:
    row = await connection.fetchrow(f"SELECT {_COLUMNS} FROM api_key WHERE prefix = $1", prefix)
    return None if row is None else _record(row)


async def list_api_keys(connection: Connection) -> list[ApiKeyRecord]:
    rows = await connection.fetch(f"SELECT {_COLUMNS} FROM api_key ORDER BY created_at, name")
    return [_record(row) for row in rows]


async def count_api_keys(connection: Connection) -> int:
    count: int = await connection.fetchval("SELECT count(*) FROM api_key")
    return count


async def revoke_api_key(connection: Connection, name_or_prefix: str) -> ApiKeyRecord | None:
    """Marks a key revoked (by name or prefix); returns it, or None if there is no such key."""
    row = await connection.fetchrow(
        f"UPDATE api_key SET revoked_at = coalesce(revoked_at, now())"
        f" WHERE name = $1 OR prefix = $1 RETURNING {_COLUMNS}",
        name_or_prefix,
    )
    return None if row is None else _record(row)


def _record(row: asyncpg.Record) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row["id"],
        tenant=row["tenant"],
        name=row["name"],
        prefix=row["prefix"],
        key_hash=bytes(row["key_hash"]),
        rate_limit=row["rate_limit"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        default_callback_url=row["default_callback_url"],
        scopes=frozenset(row["scopes"]),
    )
