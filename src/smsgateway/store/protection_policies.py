"""Protection policies per tenant and API key, and their change log (who changed what, when).

Policies are few: every process reads them all at once (``services.protection.PolicyBook``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smsgateway.store.pool import Connection


@dataclass(frozen=True)
class StoredPolicy:
    tenant: str
    api_key_id: uuid.UUID | None
    document: dict[str, Any]
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True)
class PolicyChange:
    tenant: str
    api_key_id: uuid.UUID | None
    document: dict[str, Any] | None
    changed_by: str
    changed_at: datetime


async def all_policies(connection: Connection) -> list[StoredPolicy]:
    """Every stored policy: they are few (one per tenant or narrowed key), read at once."""
    rows = await connection.fetch(
        "SELECT tenant, api_key_id, policy::text AS policy, updated_at, updated_by"
        " FROM protection_policy"
    )
    return [_policy(row) for row in rows]


async def put_policy(
    connection: Connection,
    *,
    tenant: str,
    api_key_id: uuid.UUID | None,
    document: dict[str, Any] | None,
    changed_by: str,
) -> None:
    """Sets (``document``) or removes (None) a policy, and logs the change with who made it."""
    text = None if document is None else json.dumps(document, sort_keys=True)
    async with connection.transaction():
        if api_key_id is None:
            await connection.execute(
                "DELETE FROM protection_policy WHERE tenant = $1 AND api_key_id IS NULL", tenant
            )
        else:
            await connection.execute(
                "DELETE FROM protection_policy WHERE api_key_id = $1", api_key_id
            )
        if text is not None:
            await connection.execute(
                "INSERT INTO protection_policy (tenant, api_key_id, policy, updated_by)"
                " VALUES ($1, $2, $3::text::jsonb, $4)",
                tenant,
                api_key_id,
                text,
                changed_by,
            )
        await connection.execute(
            "INSERT INTO protection_policy_change (tenant, api_key_id, policy, changed_by)"
            " VALUES ($1, $2, $3::text::jsonb, $4)",
            tenant,
            api_key_id,
            text,
            changed_by,
        )


async def policy_changes(
    connection: Connection, tenant: str, limit: int = 50
) -> list[PolicyChange]:
    rows = await connection.fetch(
        "SELECT tenant, api_key_id, policy::text AS policy, changed_by, changed_at"
        " FROM protection_policy_change WHERE tenant = $1 ORDER BY id DESC LIMIT $2",
        tenant,
        limit,
    )
    return [
        PolicyChange(
            row["tenant"],
            row["api_key_id"],
            None if row["policy"] is None else json.loads(row["policy"]),
            row["changed_by"],
            row["changed_at"],
        )
        for row in rows
    ]


def _policy(row: Any) -> StoredPolicy:
    return StoredPolicy(
        row["tenant"],
        row["api_key_id"],
        json.loads(row["policy"]),
        row["updated_at"],
        row["updated_by"],
    )
