"""Create, list, revoke and authenticate API keys."""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from functools import partial

import asyncpg
from limits import parse as parse_rate_limit

from smsgateway.domain.api_keys import (
    ALL_SCOPES,
    DEFAULT_SCOPES,
    SECRET_BYTES,
    Scope,
    format_api_key,
    hash_api_key,
    key_matches,
    looks_like_api_key,
    visible_prefix,
)
from smsgateway.domain.callback_targets import check_callback_url
from smsgateway.store import api_keys as store
from smsgateway.store.api_keys import ApiKeyRecord
from smsgateway.store.errors import UNAVAILABLE_ERRORS, DatabaseUnavailableError

# A revoked key stops working within this many seconds in every worker.
AUTH_CACHE_SECONDS = 30.0


class InvalidRateLimitError(ValueError):
    """A rate limit that is not of the form ``600/minute``."""


class InvalidCallbackUrlError(ValueError):
    """A default callback URL that callbacks may not go to (see domain.callback_targets)."""


@dataclass(frozen=True)
class CreatedApiKey:
    key: str
    record: ApiKeyRecord


async def create_api_key(
    pool: asyncpg.Pool,
    *,
    name: str,
    tenant: str | None = None,
    rate_limit: str | None = None,
    callback_url: str | None = None,
    allow_private_callbacks: bool = False,
    scopes: frozenset[Scope] = DEFAULT_SCOPES,
) -> CreatedApiKey:
    """Makes a new random key; the plain key is returned here once and never stored.

    ``callback_url`` is where status callbacks of the key's messages go when a message names
    none; it must pass the callback target policy (private targets only when allowed).
    """
    if rate_limit is not None:
        validate_rate_limit(rate_limit)
    if callback_url is not None:
        refusal = check_callback_url(callback_url, allow_private=allow_private_callbacks)
        if refusal is not None:
            raise InvalidCallbackUrlError(
                f"{callback_url!r} cannot receive callbacks ({refusal.value}): it must be "
                "http(s) to a public address"
            )
    key = format_api_key(secrets.token_bytes(SECRET_BYTES))
    async with pool.acquire() as connection:
        record = await store.insert_api_key(
            connection,
            tenant=tenant or name,
            name=name,
            prefix=visible_prefix(key),
            key_hash=hash_api_key(key),
            rate_limit=rate_limit,
            default_callback_url=callback_url,
            scopes=[scope.value for scope in scopes],
        )
    return CreatedApiKey(key=key, record=record)


def validate_rate_limit(rate_limit: str) -> None:
    try:
        parse_rate_limit(rate_limit)
    except ValueError as exc:
        raise InvalidRateLimitError(
            f"{rate_limit!r} is not a rate limit; write it like '600/minute' or '10/second'"
        ) from exc


async def list_api_keys(pool: asyncpg.Pool) -> list[ApiKeyRecord]:
    async with pool.acquire() as connection:
        return await store.list_api_keys(connection)


async def revoke_api_key(pool: asyncpg.Pool, name_or_prefix: str) -> ApiKeyRecord | None:
    async with pool.acquire() as connection:
        return await store.revoke_api_key(connection, name_or_prefix)


async def ensure_development_key(pool: asyncpg.Pool) -> CreatedApiKey | None:
    """On an empty key table, creates a key named ``development``; otherwise does nothing.

    It holds every scope: on a fresh machine its holder is the operator, and the simulator's
    numbers are assigned to no tenant, so only an admin key sees their inbound messages."""
    async with pool.acquire() as connection:
        if await store.count_api_keys(connection) > 0:
            return None
    return await create_api_key(pool, name="development", tenant="development", scopes=ALL_SCOPES)


class ApiKeyAuthenticator:
    """Checks presented keys against the store, remembering good ones for a short while.

    Accepting a message must not cost a key look-up every time; the cache is keyed by the
    key's digest, so the plain key is not kept in memory longer than the request. Requests
    that miss together (at start, or when an entry expires under load) share one look-up:
    64 callers of one key made 64 identical queries every ``ttl_seconds``.
    """

    def __init__(self, pool: asyncpg.Pool, ttl_seconds: float = AUTH_CACHE_SECONDS) -> None:
        self._pool = pool
        self._ttl = ttl_seconds
        self._cache: dict[bytes, tuple[ApiKeyRecord, float]] = {}
        self._looking_up: dict[bytes, asyncio.Future[ApiKeyRecord | None]] = {}

    async def authenticate(self, presented: str) -> ApiKeyRecord | None:
        """The active key that ``presented`` is, or None."""
        if not looks_like_api_key(presented):
            return None
        digest = hash_api_key(presented)
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        lookup = self._looking_up.get(digest)
        if lookup is None:
            # A task of its own: a caller that goes away does not cancel the others' answer.
            lookup = asyncio.ensure_future(self._look_up(presented, digest))
            self._looking_up[digest] = lookup
            lookup.add_done_callback(partial(self._looked_up, digest))
        return await asyncio.shield(lookup)

    def _looked_up(self, digest: bytes, lookup: asyncio.Future[ApiKeyRecord | None]) -> None:
        del self._looking_up[digest]
        if not lookup.cancelled():
            # Retrieved, so that a failure whose callers all went away logs no warning.
            lookup.exception()

    async def _look_up(self, presented: str, digest: bytes) -> ApiKeyRecord | None:
        now = time.monotonic()
        try:
            async with self._pool.acquire() as connection:
                record = await store.find_api_key_by_prefix(connection, visible_prefix(presented))
        except UNAVAILABLE_ERRORS as exc:
            # Once the cache has expired, every authenticated call depends on this look-up.
            raise DatabaseUnavailableError(str(exc) or type(exc).__name__) from exc
        if record is None or not record.is_active or not key_matches(presented, record.key_hash):
            self._cache.pop(digest, None)
            return None
        self._cache[digest] = (record, now + self._ttl)
        return record
