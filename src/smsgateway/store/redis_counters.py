"""Velocity counters in Redis: every draw of a message checked and taken in one Lua script.

A counter is a hash ``{amount, at}`` (``at`` in milliseconds on the Redis server's clock, so
every gateway process drains buckets on one clock) under ``smsgw:`` + the draw's key
(``smsgw:velocity:<tenant>:prefix:+4670123``). The take script computes each counter's level
as ``domain.counters.Ledger.level`` does (drained at ``drain`` per second since ``at``), and
writes every draw only when every one fits within its
capacity, so a refused message takes nothing; either way it returns the levels it read, for
``domain.counters.decide`` to say why. Each written key expires once its bucket would have
drained to nothing, so idle prefixes vanish by themselves.

``redis`` is an optional dependency (the ``redis`` extra): imported when a Redis URL is
configured, not before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from smsgateway.domain.counters import Draw

if TYPE_CHECKING:
    from redis.asyncio import Redis

KEY_PREFIX = "smsgw:"

# KEYS: counters. ARGV: now in ms ("" = the server's TIME), then per key amount, capacity,
# drain per second. Returns {taken (1|0), now_ms, level_1, ..., level_n} with levels as strings
# (Lua numbers lose nothing at these sizes, but a reply integer would truncate fractions).
_LEVELS = """
local now = tonumber(ARGV[1])
if now == nil then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local levels = {}
local fits = true
for i, key in ipairs(KEYS) do
    local amount = tonumber(ARGV[i * 3 - 1])
    local capacity = tonumber(ARGV[i * 3])
    local drain = tonumber(ARGV[i * 3 + 1])
    local stored = redis.call('HMGET', key, 'amount', 'at')
    local level = 0
    if stored[1] then
        local elapsed = math.max(0, now - tonumber(stored[2])) / 1000
        level = math.max(0, tonumber(stored[1]) - elapsed * drain)
    end
    levels[i] = level
    if level + amount > capacity then fits = false end
end
"""

_TAKE = (
    _LEVELS
    + """
local reply = {0, now}
for i, key in ipairs(KEYS) do
    local after = levels[i] + tonumber(ARGV[i * 3 - 1])
    local drain = tonumber(ARGV[i * 3 + 1])
    if fits then
        redis.call('HSET', key, 'amount', string.format('%.17g', after), 'at', now)
        redis.call('PEXPIRE', key, math.ceil(after / drain * 1000) + 1000)
    end
    reply[i + 2] = string.format('%.17g', levels[i])
end
if fits then reply[1] = 1 end
return reply
"""
)

# Same arguments; takes nothing, only reports the levels (for a preview).
_READ = (
    _LEVELS
    + """
local reply = {0, now}
for i = 1, #KEYS do reply[i + 2] = string.format('%.17g', levels[i]) end
return reply
"""
)

# Same arguments; gives each amount back (never below zero), keeping the drain honest.
_GIVE_BACK = (
    _LEVELS
    + """
for i, key in ipairs(KEYS) do
    local after = math.max(0, levels[i] - tonumber(ARGV[i * 3 - 1]))
    local drain = tonumber(ARGV[i * 3 + 1])
    if after > 0 then
        redis.call('HSET', key, 'amount', string.format('%.17g', after), 'at', now)
        redis.call('PEXPIRE', key, math.ceil(after / drain * 1000) + 1000)
    else
        redis.call('DEL', key)
    end
end
return {1, now}
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
    """The three scripts over one client; ``now_ms`` (tests) replaces the server's clock."""

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._take = client.register_script(_TAKE)
        self._read = client.register_script(_READ)
        self._give_back = client.register_script(_GIVE_BACK)

    @classmethod
    def from_url(cls, url: str, *, timeout_seconds: float) -> RedisCounterStore:
        from redis.asyncio import Redis  # the optional extra, only when configured

        return cls(
            Redis.from_url(
                url,
                socket_timeout=timeout_seconds,
                socket_connect_timeout=timeout_seconds,
                decode_responses=True,
            )
        )

    async def take(self, draws: Sequence[Draw], now_ms: int | None = None) -> RedisLevels:
        """Takes every draw if every one fits, else none; the levels either way."""
        return _levels(await self._run(self._take, draws, now_ms))

    async def read(self, draws: Sequence[Draw], now_ms: int | None = None) -> RedisLevels:
        return _levels(await self._run(self._read, draws, now_ms))

    async def give_back(self, draws: Sequence[Draw], now_ms: int | None = None) -> None:
        await self._run(self._give_back, draws, now_ms)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _run(self, script: Any, draws: Sequence[Draw], now_ms: int | None) -> list[Any]:
        arguments: list[str | float] = ["" if now_ms is None else str(now_ms)]
        for draw in draws:
            arguments.extend((str(draw.amount), str(draw.capacity), repr(draw.drain_per_second)))
        reply: list[Any] = await script(
            keys=[KEY_PREFIX + draw.key for draw in draws], args=arguments
        )
        return reply


def _levels(reply: list[Any]) -> RedisLevels:
    return RedisLevels(
        taken=int(reply[0]) == 1,
        now_ms=int(reply[1]),
        levels=tuple(Decimal(level) for level in reply[2:]),
    )
