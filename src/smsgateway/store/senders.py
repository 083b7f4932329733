"""Which tenant owns each of the gateway's numbers (``sender_assignment``), and tenant settings
(``tenant_setting``: the URL a tenant's own events go to).

Numbers are stored as ``phone.normalise_address`` writes them, as inbound ``to`` is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smsgateway.store.pool import Connection


@dataclass(frozen=True, slots=True)
class SenderAssignment:
    sender: str
    tenant: str
    assigned_at: datetime


@dataclass(frozen=True, slots=True)
class TenantSetting:
    tenant: str
    callback_url: str | None
    updated_at: datetime


async def assign_sender(connection: Connection, sender: str, tenant: str) -> SenderAssignment:
    """Gives ``sender`` to ``tenant`` (taking it from its previous owner, if any)."""
    row = await connection.fetchrow(
        "INSERT INTO sender_assignment (sender, tenant) VALUES ($1, $2)"
        " ON CONFLICT (sender) DO UPDATE SET tenant = excluded.tenant, assigned_at = now()"
        " RETURNING sender, tenant, assigned_at",
        sender,
        tenant,
    )
    assert row is not None
    return SenderAssignment(row["sender"], row["tenant"], row["assigned_at"])


async def unassign_sender(connection: Connection, sender: str) -> bool:
    """The number belongs to no tenant any more; False if it belonged to none."""
    deleted = await connection.fetchval(
        "WITH d AS (DELETE FROM sender_assignment WHERE sender = $1 RETURNING 1)"
        " SELECT count(*) FROM d",
        sender,
    )
    return bool(deleted)


async def list_senders(connection: Connection) -> list[SenderAssignment]:
    rows = await connection.fetch(
        "SELECT sender, tenant, assigned_at FROM sender_assignment ORDER BY tenant, sender"
    )
    return [SenderAssignment(row["sender"], row["tenant"], row["assigned_at"]) for row in rows]


async def owner_of(connection: Connection, sender: str) -> str | None:
    """The tenant that owns ``sender`` now, or None."""
    owner: str | None = await connection.fetchval(
        "SELECT tenant FROM sender_assignment WHERE sender = $1", sender
    )
    return owner


async def sender_owners(connection: Connection) -> dict[str, str]:
    """Every assigned sender (as ``normalise_address`` writes it) and the tenant owning it."""
    rows = await connection.fetch("SELECT sender, tenant FROM sender_assignment")
    return {row["sender"]: row["tenant"] for row in rows}


async def set_tenant_callback_url(
    connection: Connection, tenant: str, callback_url: str | None
) -> TenantSetting:
    row = await connection.fetchrow(
        "INSERT INTO tenant_setting (tenant, callback_url) VALUES ($1, $2)"
        " ON CONFLICT (tenant) DO UPDATE SET callback_url = excluded.callback_url,"
        " updated_at = now() RETURNING tenant, callback_url, updated_at",
        tenant,
        callback_url,
    )
    assert row is not None
    return TenantSetting(row["tenant"], row["callback_url"], row["updated_at"])


async def list_tenant_settings(connection: Connection) -> list[TenantSetting]:
    rows = await connection.fetch(
        "SELECT tenant, callback_url, updated_at FROM tenant_setting ORDER BY tenant"
    )
    return [TenantSetting(row["tenant"], row["callback_url"], row["updated_at"]) for row in rows]
