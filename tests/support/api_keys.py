"""API keys for tests, issued straight into a test database."""

from __future__ import annotations

import asyncpg

from smsgateway.domain.api_keys import ALL_SCOPES, Scope
from smsgateway.services.api_keys import create_api_key


async def issue_api_key(
    database_url: str,
    name: str,
    *,
    tenant: str | None = None,
    rate_limit: str | None = None,
    scopes: frozenset[Scope] = ALL_SCOPES,
) -> str:
    """A new key's secret, as `smsgateway apikey create` would show it. Tests act as the
    operator (every scope) unless they are about scopes."""
    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=1)
    try:
        return (
            await create_api_key(
                pool, name=name, tenant=tenant, rate_limit=rate_limit, scopes=scopes
            )
        ).key
    finally:
        await pool.close()
