"""The database schema's version: apply Alembic migrations, and check that a database is at head.

The schema itself lives only in ``migrations/``; this module runs them and compares revisions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.exc import DBAPIError

from smsgateway.store.errors import CONNECT_ERRORS, SchemaNotFoundError, unreachable

if TYPE_CHECKING:
    from smsgateway.store.pool import Connection


def alembic_config(migrations_dir: Path, dsn: str) -> Config:
    """An Alembic config pointing at ``migrations_dir`` and ``dsn``, without an ini file."""
    if not (migrations_dir / "env.py").is_file():
        raise SchemaNotFoundError(
            f"no Alembic migrations at {migrations_dir}; set SMSGW_MIGRATIONS_DIR"
        )
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    # Alembic's config is ConfigParser-based: '%' would start an interpolation.
    config.set_main_option("sqlalchemy.url", dsn.replace("%", "%%"))
    return config


def upgrade_to_head(migrations_dir: Path, dsn: str) -> None:
    """Applies every pending migration. Blocking: call it before the event loop or in a thread.

    Raises ``DatabaseUnreachableError`` (one line, no password) when it cannot connect."""
    try:
        command.upgrade(alembic_config(migrations_dir, dsn), "head")
    except CONNECT_ERRORS as exc:
        raise unreachable(dsn, exc) from exc
    except DBAPIError as exc:
        # SQLAlchemy (under Alembic) wraps asyncpg's refusal; the cause says what it was.
        cause = exc.orig.__cause__ if exc.orig is not None else None
        if isinstance(cause, CONNECT_ERRORS):
            raise unreachable(dsn, cause) from exc
        raise


def downgrade_to(migrations_dir: Path, dsn: str, revision: str) -> None:
    command.downgrade(alembic_config(migrations_dir, dsn), revision)


def head_revision(migrations_dir: Path) -> str | None:
    """The newest revision in ``migrations_dir``, read from the scripts (no database)."""
    config = alembic_config(migrations_dir, "postgresql://unused")
    return ScriptDirectory.from_config(config).get_current_head()


async def current_revision(connection: Connection) -> str | None:
    """The revision the database says it is at, or None before the first migration."""
    exists = await connection.fetchval("SELECT to_regclass('public.alembic_version') IS NOT NULL")
    if not exists:
        return None
    revision: str | None = await connection.fetchval("SELECT version_num FROM alembic_version")
    return revision
