"""The asyncpg connection pool: one per process, created in the app's lifespan."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, TypeAlias

import asyncpg

from smsgateway.observability.outage import DATABASE_OUTAGE

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    # A store function takes either a bare connection or one lent by the pool.
    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]


async def create_pool(
    dsn: str,
    *,
    min_size: int,
    max_size: int,
    command_timeout: float,
    connect_timeout: float,
    durable_commits: bool = True,
) -> asyncpg.Pool:
    """Opens a pool; with ``min_size=0`` it connects lazily, so the app starts without a DB.

    ``durable_commits=False`` lets commits return before their WAL reaches disk. Only the
    dispatcher uses it: what it records (claims, batch ids, retries) may be lost in a Postgres
    crash, and that is safe, because an entry that comes back is looked up at Sinch by
    client_reference before anything is sent again. Accepting a message always waits for disk.
    """
    settings = {"application_name": "smsgateway"}
    if not durable_commits:
        settings["synchronous_commit"] = "off"
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=command_timeout,
        timeout=connect_timeout,
        init=_init_connection,
        reset=_keep_session,
        server_settings=settings,
    )


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Skips asyncpg's reset on release (RESET ALL, UNLISTEN, ...): our code leaves no session
    state behind (no SET, LISTEN, advisory locks or open cursors), and the reset was a round
    trip on every release, several per dispatched message."""


async def _init_connection(connection: asyncpg.Connection) -> None:
    # A new connection after an outage is the first sign the database is back.
    DATABASE_OUTAGE.available()
    for type_name in ("json", "jsonb"):
        await connection.set_type_codec(
            type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )
