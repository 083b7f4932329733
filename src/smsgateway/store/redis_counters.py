"""Velocity counters in Redis: every draw of a message checked and taken in one Lua script.

A counter is a hash ``{amount, at}`` (``at`` in milliseconds on the Redis server's clock, so
every gateway process drains buckets on one clock) under ``smsgw:`` + the draw's key
(``smsgw:velocity:<tenant>:prefix:+4670123``). The take script computes each counter's level
as ``domain.counters.Ledger.level`` does (drained at ``drain`` per second since ``at``), and
writes every draw only when every one fits within its capacity, so a refused message takes
nothing; either way it returns the levels it read, for
``domain.counters.decide`` to say why. Each written key expires once its bucket would have
drained to nothing, so idle prefixes vanish by themselves. Concurrent messages share one
script call, each message all or nothing in turn.

``redis`` is an optional dependency (the ``redis`` extra): imported when a Redis URL is
configured, not before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from smsgateway.domain.counters import Draw

if TYPE_CHECKING:
    from redis.asyncio import Redis

KEY_PREFIX = "smsgw:"

# Reads a counter's level at ``now`` (ms): drained at ``drain`` per second since it was written.
_LEVEL_OF = """
local function stored_level(key, now, drain)
    local stored = redis.call('HMGET', key, 'amount', 'at')
    if not stored[1] then return 0 end
    local elapsed = math.max(0, now - tonumber(stored[2])) / 1000
    return math.max(0, tonumber(stored[1]) - elapsed * drain)
end
local function clock(given)
    local now = tonumber(given)
    if now == nil then
        local t = redis.call('TIME')
        now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    end
    return now
end
local function write(key, after, now, drain)
    if after > 0 then
        redis.call('HSET', key, 'amount', string.format('%.17g', after), 'at', now)
        redis.call('PEXPIRE', key, math.ceil(after / drain * 1000) + 1000)
    else
        redis.call('DEL', key)
    end
end
"""

# The draws of several messages, in order, each message all or nothing against the counters
# as the messages before it left them (as ``domain.counters.decide`` goes through a batch).
# KEYS: every message's counters, one after the other. ARGV: now in ms ("" = the server's
# TIME), then per message its number of draws n followed by n triples (amount, capacity,
# drain per second). Returns {now_ms, then per message: taken (1|0), its n levels before}, the
# levels as strings (a reply integer would truncate fractions).
_TAKE = (
    _LEVEL_OF
    + """
local now = clock(ARGV[1])
local level, drain_of, reply = {}, {}, {now}
local k, a = 1, 2
while a <= #ARGV do
    local n = tonumber(ARGV[a])
    a = a + 1
    local fits, levels = true, {}
    for i = 0, n - 1 do
        local key = KEYS[k + i]
        local amount, capacity = tonumber(ARGV[a + i * 3]), tonumber(ARGV[a + i * 3 + 1])
        local drain = tonumber(ARGV[a + i * 3 + 2])
        if level[key] == nil then level[key] = stored_level(key, now, drain) end
        levels[i + 1] = level[key]
        if level[key] + amount > capacity then fits = false end
    end
    reply[#reply + 1] = fits and 1 or 0
    for i = 0, n - 1 do
        local key = KEYS[k + i]
        reply[#reply + 1] = string.format('%.17g', levels[i + 1])
        if fits then
            level[key] = levels[i + 1] + tonumber(ARGV[a + i * 3])
            drain_of[key] = tonumber(ARGV[a + i * 3 + 2])
        end
    end
    k, a = k + n, a + n * 3
end
for key, drain in pairs(drain_of) do write(key, level[key], now, drain) end
return reply
"""
)

# One message's draws (same ARGV as one message of _TAKE): the levels, nothing taken.
_READ = (
    _LEVEL_OF
    + """
local now = clock(ARGV[1])
local reply = {now, 0}
for i, key in ipairs(KEYS) do
    local drain = tonumber(ARGV[2 + (i - 1) * 3 + 3])
    reply[i + 2] = string.format('%.17g', stored_level(key, now, drain))
end
return reply
"""
)

# One message's draws given back (never below zero), the drain kept honest.
_GIVE_BACK = (
    _LEVEL_OF
    + """
local now = clock(ARGV[1])
for i, key in ipairs(KEYS) do
    local amount, drain = tonumber(ARGV[2 + (i - 1) * 3 + 1]), tonumber(ARGV[2 + (i - 1) * 3 + 3])
    write(key, math.max(0, stored_level(key, now, drain) - amount), now, drain)
end
return {now}
"""
)


@dataclass(frozen=True, slots=True)
class RedisLevels:
    """What a script saw: whether it took the draws, the server's time (Unix ms) and each
    draw's level before the take, in the draws' order."""

    taken: bool
    now_ms: int
    levels: tuple[Decimal, ...]


class RedisCounterStore:
    """The three scripts over one client. Concurrent ``take_one`` calls share one script call
    (a batch is whatever arrived while the previous call was in flight, as in
    ``store.batching``): redis-py spends ~150 us of CPU on any command, more than the script.
    ``now_ms`` (tests) replaces the Redis server's clock."""

    def __init__(
        self, client: Redis, *, now_ms: Callable[[], int] | None = None, max_batch: int = 256
    ) -> None:
        self._client = client
        self._now_ms = now_ms
        self._max_batch = max_batch
        self._take = client.register_script(_TAKE)
        self._read = client.register_script(_READ)
        self._give_back = client.register_script(_GIVE_BACK)
        self._pending: list[tuple[Sequence[Draw], asyncio.Future[RedisLevels]]] = []
        self._runner: asyncio.Task[None] | None = None

    @classmethod
    def from_url(
        cls, url: str, *, timeout_seconds: float, now_ms: Callable[[], int] | None = None
    ) -> RedisCounterStore:
        from redis.asyncio import Redis  # the optional extra, only when configured

        client = Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            decode_responses=True,
        )
        return cls(client, now_ms=now_ms)

    async def take_one(self, draws: Sequence[Draw]) -> RedisLevels:
        """``take`` of one message, in one script call with the messages taken meanwhile."""
        future: asyncio.Future[RedisLevels] = asyncio.get_running_loop().create_future()
        self._pending.append((draws, future))
        if self._runner is None:
            self._runner = asyncio.create_task(self._drain())
        # Shielded: a caller that goes away must not cancel a call that carries others.
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                try:
                    found = await self.take([draws for draws, _ in batch])
                except BaseException as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                else:
                    for (_, future), levels in zip(batch, found, strict=True):
                        if not future.done():
                            future.set_result(levels)
        finally:
            # In the step that found nothing pending: a take queued after it starts a runner.
            self._runner = None

    async def take(self, messages: Sequence[Sequence[Draw]]) -> list[RedisLevels]:
        """Takes each message's draws if every one of them fits, else none of them, in order;
        the levels each message found either way."""
        keys: list[str] = []
        arguments: list[str] = [self._clock()]
        for draws in messages:
            keys.extend(KEY_PREFIX + draw.key for draw in draws)
            arguments.append(str(len(draws)))
            arguments.extend(_terms(draws))
        reply: list[Any] = await self._take(keys=keys, args=arguments)
        now = int(reply[0])
        found: list[RedisLevels] = []
        at = 1
        for draws in messages:
            levels = tuple(Decimal(level) for level in reply[at + 1 : at + 1 + len(draws)])
            found.append(RedisLevels(int(reply[at]) == 1, now, levels))
            at += 1 + len(draws)
        return found

    async def read(self, draws: Sequence[Draw]) -> RedisLevels:
        reply = await self._run(self._read, draws)
        return RedisLevels(False, int(reply[0]), tuple(Decimal(level) for level in reply[2:]))

    async def give_back(self, draws: Sequence[Draw]) -> None:
        await self._run(self._give_back, draws)

    async def aclose(self) -> None:
        await self._client.aclose()

    def _clock(self) -> str:
        return "" if self._now_ms is None else str(self._now_ms())

    async def _run(self, script: Any, draws: Sequence[Draw]) -> list[Any]:
        arguments = [self._clock(), str(len(draws)), *_terms(draws)]
        reply: list[Any] = await script(
            keys=[KEY_PREFIX + draw.key for draw in draws], args=arguments
        )
        return reply


def _terms(draws: Sequence[Draw]) -> list[str]:
    terms: list[str] = []
    for draw in draws:
        terms.extend((str(draw.amount), str(draw.capacity), repr(draw.drain_per_second)))
    return terms
