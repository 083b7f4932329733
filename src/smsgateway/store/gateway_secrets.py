"""Secrets the gateway generated for itself (``gateway_secret``), shared by every process.

``ensure_secret`` is insert-if-absent then read: two processes starting together each offer a
value, one wins, and both (and every later restart) read the winner's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smsgateway.store.pool import Connection

_INSERT = """
INSERT INTO gateway_secret (name, value)
VALUES ($1, $2)
ON CONFLICT (name) DO NOTHING
"""

_READ = "SELECT value FROM gateway_secret WHERE name = $1"


async def ensure_secret(connection: Connection, name: str, candidate: str) -> str:
    """The secret called ``name``: the one stored, else ``candidate``, stored now."""
    # Two statements, not one: a single INSERT ... RETURNING UNION SELECT would read from the
    # snapshot taken before a concurrent winner committed, and find nothing. The INSERT waits
    # for a concurrent one on the same name to commit; the SELECT then sees its row.
    await connection.execute(_INSERT, name, candidate)
    value = await connection.fetchval(_READ, name)
    if not isinstance(value, str):
        raise LookupError(f"the gateway secret {name!r} vanished while it was being read")
    return value


async def read_secret(connection: Connection, name: str) -> str | None:
    """The secret called ``name``, or None if it was never generated."""
    value = await connection.fetchval(_READ, name)
    return value if isinstance(value, str) else None
