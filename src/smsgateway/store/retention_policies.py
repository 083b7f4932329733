"""Tenants' retention overrides (``retention_policy``): a row replaces the gateway's window.

In a row, a NULL ``redact_after_days`` or ``delete_after_days`` keeps that data for good; no
row means the gateway's SMSGW_REDACT_AFTER_DAYS and SMSGW_DELETE_AFTER_DAYS apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from smsgateway.domain.retention import RetentionWindow

if TYPE_CHECKING:
    import asyncpg

    from smsgateway.store.pool import Connection


@dataclass(frozen=True, slots=True)
class StoredRetention:
    tenant: str
    window: RetentionWindow
    updated_at: datetime
    updated_by: str


_COLUMNS = "tenant, redact_after_days, delete_after_days, updated_at, updated_by"

_UPSERT = f"""
INSERT INTO retention_policy (tenant, redact_after_days, delete_after_days, updated_by)
VALUES ($1, $2, $3, $4)
ON CONFLICT (tenant) DO UPDATE
SET redact_after_days = excluded.redact_after_days,
    delete_after_days = excluded.delete_after_days,
    updated_at = now(), updated_by = excluded.updated_by
RETURNING {_COLUMNS}
"""


async def all_overrides(connection: Connection) -> dict[str, RetentionWindow]:
    """Every tenant's override, by tenant."""
    rows = await connection.fetch(f"SELECT {_COLUMNS} FROM retention_policy")
    return {row["tenant"]: _stored(row).window for row in rows}


async def get_override(connection: Connection, tenant: str) -> StoredRetention | None:
    row = await connection.fetchrow(
        f"SELECT {_COLUMNS} FROM retention_policy WHERE tenant = $1", tenant
    )
    return None if row is None else _stored(row)


async def set_override(
    connection: Connection, tenant: str, window: RetentionWindow, *, updated_by: str
) -> StoredRetention:
    """Stores ``tenant``'s window, replacing any earlier one."""
    row = await connection.fetchrow(
        _UPSERT, tenant, window.redact_after_days, window.delete_after_days, updated_by
    )
    assert row is not None
    return _stored(row)


async def delete_override(connection: Connection, tenant: str) -> bool:
    """Removes ``tenant``'s override; False if it had none."""
    status = await connection.execute("DELETE FROM retention_policy WHERE tenant = $1", tenant)
    return status != "DELETE 0"


def _stored(row: asyncpg.Record) -> StoredRetention:
    return StoredRetention(
        tenant=row["tenant"],
        window=RetentionWindow(row["redact_after_days"], row["delete_after_days"]),
        updated_at=row["updated_at"],
        updated_by=row["updated_by"],
    )
