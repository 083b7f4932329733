"""Whether this process can serve: the database answers in time and its schema is current."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg

from smsgateway.store.schema import current_revision


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str


async def check_readiness(
    pool: asyncpg.Pool, schema_head: str | None, within_seconds: float
) -> Readiness:
    """Asks Postgres for the schema revision within ``within_seconds``."""
    try:
        async with asyncio.timeout(within_seconds):
            async with pool.acquire() as connection:
                revision = await current_revision(connection)
    except TimeoutError:
        return Readiness(False, f"the database did not answer within {within_seconds:g} s")
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return Readiness(False, f"the database is unreachable ({type(exc).__name__})")
    if revision != schema_head:
        return Readiness(
            False,
            f"the database schema is at {revision or 'no revision'}, expected {schema_head}; "
            "run `smsgateway migrate`",
        )
    return Readiness(True, f"reachable, schema at {revision}")
