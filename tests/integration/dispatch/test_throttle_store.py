"""The shared token bucket: one statement reserves tokens, spacing callers by N / rate."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from smsgateway.store import throttle

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def reserve(
    pool: asyncpg.Pool, tokens: int, *, rate: float = 10, burst: float = 5, max_wait: float = 1
) -> throttle.Reservation:
    async with pool.acquire() as connection:
        return await throttle.reserve(
            connection, name="test", rate=rate, burst=burst, tokens=tokens, max_wait=max_wait
        )


async def test_a_full_bucket_grants_a_burst_then_spaces_callers(pool: asyncpg.Pool) -> None:
    first = await reserve(pool, 5)
    second = await reserve(pool, 2)
    third = await reserve(pool, 2)

    assert first == throttle.Reservation(granted=True, wait_seconds=0.0)
    assert second.granted
    assert 0.15 <= second.wait_seconds <= 0.2  # 2 tokens at 10/s, minus the refill meanwhile
    assert third.granted
    assert 0.35 <= third.wait_seconds <= 0.4


async def test_a_reservation_beyond_max_wait_is_refused_and_takes_nothing(
    pool: asyncpg.Pool,
) -> None:
    await reserve(pool, 5)
    await reserve(pool, 9)  # 0.9 s of debt: within max_wait

    refused = await reserve(pool, 5)
    assert not refused.granted
    assert 0.3 <= refused.wait_seconds <= 0.5  # until the debt is small enough again

    async with pool.acquire() as connection:
        tokens = await connection.fetchval("SELECT tokens FROM send_throttle WHERE name = 'test'")
    assert tokens == pytest.approx(-9, abs=0.5)


async def test_a_batch_larger_than_the_burst_goes_from_a_full_bucket(pool: asyncpg.Pool) -> None:
    big = await reserve(pool, 20, max_wait=0.5)
    after = await reserve(pool, 1, max_wait=5)

    assert big == throttle.Reservation(granted=True, wait_seconds=0.0)
    assert after.granted
    assert 1.5 <= after.wait_seconds <= 1.6  # the 15-token debt, then one token: 16 at 10/s


async def test_concurrent_reservations_never_overdraw(pool: asyncpg.Pool) -> None:
    loop = asyncio.get_running_loop()

    async def slot() -> float:
        reservation = await reserve(pool, 1, rate=100, burst=1, max_wait=10)
        assert reservation.granted
        return loop.time() + reservation.wait_seconds

    slots = sorted(await asyncio.gather(*(slot() for _ in range(40))))

    # Forty callers at 100/s with no burst to speak of: their turns span about 0.39 s.
    assert 0.33 <= slots[-1] - slots[0] <= 0.6
