"""Fixtures of the store tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio


@pytest_asyncio.fixture
async def connection(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to the test's own database (no pool, no codecs of ours)."""
    opened = await asyncpg.connect(database_url)
    try:
        yield opened
    finally:
        await opened.close()
