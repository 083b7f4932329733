"""Store exceptions: what the rest of the gateway may catch from persistence.

StoreError
 ├── SchemaNotFoundError     the migrations folder is missing
 └── DatabaseUnavailableError  no connection within the deadline; retry later
"""

from __future__ import annotations

import asyncpg

# What asyncpg raises when the server is down, restarting or unreachable, rather than when
# a statement is wrong: the operation did nothing durable and may be retried later.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    # A pooled connection the server dropped while a statement was under way ("cannot switch
    # to state ..."): unusable now, not a fault of the statement.
    asyncpg.InternalClientError,
)


class StoreError(Exception):
    """Base of every persistence error."""


class SchemaNotFoundError(StoreError):
    """The Alembic migrations are not where the settings say."""


class DatabaseUnavailableError(StoreError):
    """Postgres could not be reached in time; the operation did nothing and may be retried."""


# Also a pool that could not lend a connection in time.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (TimeoutError, *CONNECTION_ERRORS)
