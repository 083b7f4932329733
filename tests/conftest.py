"""The test harness: one real Postgres per session, one migrated template, a fresh DB per test.

Postgres is the server named by ``SMSGW_TEST_DATABASE_URL`` (a maintenance database URL of a
server we may create databases on) or, without it, a throwaway embedded server.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from smsgateway.store.schema import upgrade_to_head

REPO_ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS_DIR = REPO_ROOT / "migrations"


def database_dsn(server_dsn: str, database: str) -> str:
    """``server_dsn`` with its database name replaced, keeping host, socket and options."""
    head, sep, query = server_dsn.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}{sep}{query}"


@pytest.fixture(scope="session")
def postgres_server_dsn() -> Iterator[str]:
    """A maintenance DSN on a real Postgres server that the tests may create databases on."""
    given = os.environ.get("SMSGW_TEST_DATABASE_URL")
    if given:
        yield given
        return
    from smsgateway.store.embedded import start_embedded_postgres

    # Not under pytest's numbered temp dirs: another pytest session starting meanwhile prunes
    # old ones, and would delete the data directory of a server still in use.
    with tempfile.TemporaryDirectory(prefix="smsgw-test-pg-") as directory:
        server = start_embedded_postgres(Path(directory), database="postgres")
        try:
            yield server.dsn
        finally:
            server.stop()


@pytest.fixture(scope="session")
def template_database(postgres_server_dsn: str) -> Iterator[str]:
    """A database migrated to head once per session; tests copy it rather than re-migrate."""
    import asyncio

    name = f"smsgw_template_{uuid.uuid4().hex[:12]}"
    asyncio.run(_execute(postgres_server_dsn, f'CREATE DATABASE "{name}"'))
    upgrade_to_head(MIGRATIONS_DIR, database_dsn(postgres_server_dsn, name))
    try:
        yield name
    finally:
        asyncio.run(_execute(postgres_server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest_asyncio.fixture
async def database_url(postgres_server_dsn: str, template_database: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test, dropped afterwards."""
    name = f"smsgw_test_{uuid.uuid4().hex[:12]}"
    await _execute(postgres_server_dsn, f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    try:
        yield database_dsn(postgres_server_dsn, name)
    finally:
        await _execute(postgres_server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest_asyncio.fixture
async def empty_database_url(postgres_server_dsn: str) -> AsyncIterator[str]:
    """A fresh database with no schema at all, for migration tests."""
    name = f"smsgw_empty_{uuid.uuid4().hex[:12]}"
    await _execute(postgres_server_dsn, f'CREATE DATABASE "{name}"')
    try:
        yield database_dsn(postgres_server_dsn, name)
    finally:
        await _execute(postgres_server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _execute(dsn: str, statement: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()
