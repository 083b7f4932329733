"""The database schema's version: apply Alembic migrations, and check that a database is at head.

The schema itself lives only in ``migrations/``; this module runs them and compares revisions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from smsgateway.store.errors import SchemaNotFoundError

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
    """Applies every pending migration. Blocking: call it before the event loop or in a thread."""
    command.upgrade(alembic_config(migrations_dir, dsn), "head")


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
