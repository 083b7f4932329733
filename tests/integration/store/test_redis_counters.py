"""Velocity counters in Redis (store.redis_counters, services.velocity), over the real Redis at
127.0.0.1:6379, on an injected clock (milliseconds), so a window passes without waiting."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from smsgateway.domain.counters import Draw, Ledger, decide
from smsgateway.observability.protection_metrics import COUNTER_FALLBACKS
from smsgateway.services.velocity import RedisVelocityCounters
from smsgateway.store.redis_counters import KEY_PREFIX, RedisCounterStore
from tests.support.redis import REDIS_URL, needs_redis

pytestmark = [pytest.mark.asyncio]

HOUR = 3600.0


class Clock:
    def __init__(self) -> None:
        self.ms = 1_800_000_000_000

    def __call__(self) -> int:
        return self.ms


def per_hour(key: str, limit: int, *indexes: int, burst: float = 1.0) -> Draw:
    return Draw(
        key=key,
        amount=Decimal(len(indexes)),
        capacity=Decimal(str(limit * burst)),
        drain_per_second=limit / HOUR,
        indexes=indexes,
        label=key.split(":")[2],
    )


@pytest_asyncio.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def counters() -> AsyncIterator[tuple[RedisVelocityCounters, Clock]]:
    clock = Clock()
    counters = RedisVelocityCounters(
        RedisCounterStore.from_url(REDIS_URL, timeout_seconds=1.0, now_ms=clock)
    )
    yield counters, clock
    await counters.aclose()


def keys() -> tuple[str, str]:
    tenant = f"t{uuid.uuid4().hex[:10]}"
    return f"velocity:{tenant}:prefix:+4670123", f"velocity:{tenant}:country:SE"


async def amount(redis: Redis, key: str) -> float:
    stored = await redis.hget(KEY_PREFIX + key, "amount")
    return 0.0 if stored is None else float(stored)


@needs_redis
async def test_a_burst_is_stopped_at_the_limit_and_passes_after_the_window(
    counters: tuple[RedisVelocityCounters, Clock],
) -> None:
    velocity, clock = counters
    prefix, country = keys()
    passed = []
    for n in range(5):
        verdict = await velocity.take([per_hour(prefix, 3, n), per_hour(country, 100, n)])
        assert verdict is not None
        passed.append(verdict.passed)
    assert passed == [True, True, True, False, False]
    refused = await velocity.take([per_hour(prefix, 3, 0), per_hour(country, 100, 0)])
    assert refused is not None
    assert refused.velocity_refused == ((0, "prefix"),)
    assert refused.retry_after == 1200  # one recipient's worth drains in 3600 / 3 s
    clock.ms += 1_199_000
    still = await velocity.take([per_hour(prefix, 3, 0)])
    assert still is not None
    assert not still.passed
    clock.ms += 1_000
    later = await velocity.take([per_hour(prefix, 3, 0)])
    assert later is not None
    assert later.passed


@needs_redis
async def test_a_refused_message_takes_nothing_from_any_counter(
    counters: tuple[RedisVelocityCounters, Clock], redis: Redis
) -> None:
    velocity, _ = counters
    prefix, country = keys()
    first = await velocity.take([per_hour(prefix, 10, 0, 1), per_hour(country, 2, 0, 1)])
    assert first is not None
    assert first.passed
    # The prefix has room for it; the country has none: neither counter moves.
    refused = await velocity.take([per_hour(prefix, 10, 0), per_hour(country, 2, 0)])
    assert refused is not None
    assert not refused.passed
    assert refused.velocity_refused == ((0, "country"),)
    assert await amount(redis, prefix) == 2.0
    assert await amount(redis, country) == 2.0


@needs_redis
async def test_what_was_taken_is_given_back_and_idle_counters_expire(
    counters: tuple[RedisVelocityCounters, Clock], redis: Redis
) -> None:
    velocity, _ = counters
    prefix, country = keys()
    draws = [per_hour(prefix, 3, 0, 1), per_hour(country, 100, 0, 1)]
    taken = await velocity.take(draws)
    assert taken is not None
    assert taken.passed
    # Two recipients drain at 3 per hour: empty in 40 minutes, so gone (with a second spare).
    ttl = await redis.pttl(KEY_PREFIX + prefix)
    assert 2_400_000 < ttl <= 2_401_000
    assert await redis.pttl(KEY_PREFIX + country) <= 73_000
    await velocity.give_back([per_hour(prefix, 3, 0)])
    assert await amount(redis, prefix) == 1.0
    await velocity.give_back(draws)
    assert not await redis.exists(KEY_PREFIX + prefix, KEY_PREFIX + country)
    again = await velocity.take([per_hour(prefix, 3, 0, 1, 2)])
    assert again is not None
    assert again.passed


@needs_redis
async def test_levels_read_without_taking(
    counters: tuple[RedisVelocityCounters, Clock], redis: Redis
) -> None:
    velocity, clock = counters
    prefix, country = keys()
    await velocity.take([per_hour(prefix, 6, 0, 1, 2)])
    clock.ms += 600_000  # 10 minutes at 6 per hour: one drained
    levels = await velocity.levels([per_hour(prefix, 6, 0), per_hour(country, 6, 0)])
    assert levels == {prefix: Decimal(2), country: Decimal(0)}
    assert await amount(redis, prefix) == 3.0


async def test_without_redis_the_draws_fall_back_to_postgres_and_it_is_said_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Nothing listens on port 1: every call fails at once, as in an outage.
    monotonic = [0.0]
    velocity = RedisVelocityCounters(
        RedisCounterStore.from_url("redis://127.0.0.1:1/0", timeout_seconds=0.2),
        retry_seconds=5.0,
        monotonic=lambda: monotonic[0],
    )
    prefix, _ = keys()
    before = COUNTER_FALLBACKS._value.get()
    with caplog.at_level(logging.WARNING, logger="smsgateway.services.velocity"):
        for _ in range(3):
            assert await velocity.take([per_hour(prefix, 3, 0)]) is None
        assert await velocity.levels([per_hour(prefix, 3, 0)]) is None
        monotonic[0] = 6.0  # time to try Redis again: still down, still said only once
        assert await velocity.take([per_hour(prefix, 3, 0)]) is None
    await velocity.aclose()
    assert COUNTER_FALLBACKS._value.get() - before == 4
    outages = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(outages) == 1


@needs_redis
async def test_concurrent_messages_share_a_script_call_and_are_decided_in_order(
    redis: Redis,
) -> None:
    clock = Clock()
    store = RedisCounterStore.from_url(REDIS_URL, timeout_seconds=1.0, now_ms=clock)
    prefix, country = keys()
    try:
        # One call: the second message does not fit the country (2 + 2 > 3) and takes
        # nothing, so the third, which needs one, still fits after the first.
        first, second, third = await store.take(
            [
                [per_hour(prefix, 10, 0), per_hour(country, 3, 0, 1)],
                [per_hour(prefix, 10, 0), per_hour(country, 3, 0, 1)],
                [per_hour(prefix, 10, 0), per_hour(country, 3, 0)],
            ]
        )
        assert (first.taken, second.taken, third.taken) == (True, False, True)
        assert second.levels == (Decimal(1), Decimal(2))
        assert third.levels == (Decimal(1), Decimal(2))
        assert (await amount(redis, prefix), await amount(redis, country)) == (2.0, 3.0)

        velocity = RedisVelocityCounters(store)
        other_prefix = prefix + "9"
        verdicts = await asyncio.gather(
            *(velocity.take([per_hour(other_prefix, 4, 0)]) for _ in range(10))
        )
        assert sum(1 for v in verdicts if v is not None and v.passed) == 4
        assert await amount(redis, other_prefix) == 4.0
    finally:
        await store.aclose()


# Three counters on different terms (capacity, drain per second), as a policy's kinds would be.
TERMS = {"a": (Decimal(3), 1.0), "b": (Decimal(5), 2.0), "c": (Decimal(2), 1.0)}

messages_and_waits = st.lists(
    st.tuples(
        st.lists(
            st.tuples(st.sampled_from(sorted(TERMS)), st.integers(1, 3)),
            min_size=1,
            max_size=3,
            unique_by=lambda draw: draw[0],
        ),
        st.integers(0, 3),  # whole seconds before it, so both sides compute exactly
    ),
    min_size=1,
    max_size=12,
)


@needs_redis
@settings(max_examples=40, deadline=None)
@given(messages_and_waits)
async def test_the_script_agrees_with_the_domains_decide(
    messages: list[tuple[list[tuple[str, int]], int]],
) -> None:
    tenant = f"t{uuid.uuid4().hex[:10]}"

    def draws_of(wanted: list[tuple[str, int]]) -> list[Draw]:
        return [
            Draw(
                key=f"velocity:{tenant}:prefix:{name}",
                amount=Decimal(amount),
                capacity=TERMS[name][0],
                drain_per_second=TERMS[name][1],
                indexes=(0,),
                label="prefix",
            )
            for name, amount in wanted
        ]

    async def scenario() -> None:
        clock = Clock()
        store = RedisCounterStore.from_url(REDIS_URL, timeout_seconds=1.0, now_ms=clock)
        ledger = Ledger(datetime.fromtimestamp(clock.ms / 1000, UTC), {})
        try:
            for wanted, wait in messages:
                clock.ms += wait * 1000
                ledger.now = datetime.fromtimestamp(clock.ms / 1000, UTC)
                draws = draws_of(wanted)
                [found] = await store.take([draws])
                assert found.taken == decide(ledger, draws).passed
        finally:
            await store.aclose()

    await scenario()
