"""Store exceptions: what the rest of the gateway may catch from persistence.

StoreError
 ├── SchemaNotFoundError     the migrations folder is missing
 ├── DatabaseUnreachableError  a command (migrate, apikey) cannot connect at all: one line
 ├── SchemaNotMigratedError  a command found a database without the gateway's tables
 └── DatabaseUnavailableError  no connection within the deadline; retry later
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

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


class DatabaseUnreachableError(StoreError):
    """A command could not connect to the database; the message names where, never how
    (no password)."""


class SchemaNotMigratedError(StoreError):
    """A command reached a database that has not been migrated (no such table)."""


class DatabaseUnavailableError(StoreError):
    """Postgres could not be reached in time; the operation did nothing and may be retried."""


# Also a pool that could not lend a connection in time.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (TimeoutError, *CONNECTION_ERRORS)


# Refusals that come while connecting (the server is not there, refuses us, or has no such
# database), as opposed to a statement that failed.
CONNECT_ERRORS: tuple[type[BaseException], ...] = (
    *UNAVAILABLE_ERRORS,
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidPasswordError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.TooManyConnectionsError,
)


def unreachable(dsn: str, exc: BaseException) -> DatabaseUnreachableError:
    """The one-line error for a failed connection to ``dsn``: host, port and database only."""
    target = urlsplit(dsn)
    # A Unix socket comes as ?host=/path; a TCP server as host:port.
    socket_dir = parse_qs(target.query).get("host", [None])[0]
    host = target.hostname or socket_dir or "localhost"
    where = f"{host}:{target.port or 5432}{target.path or '/'}"
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return DatabaseUnreachableError(f"cannot reach the database at {where}: {reason}")
