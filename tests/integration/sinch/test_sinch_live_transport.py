"""ShardedTransport under the Sinch client, against the simulator over real sockets."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from smsgateway.sinch import RetryPolicy, ShardedTransport, SinchClient, SinchNotSent
from smsgateway.sinch.models import SendBatchRequest
from tests.integration.sinch.sinch_live import closed_port, new_reference, set_faults
from tests.support.polling import wait_until
from tests.support.sinch_simulator import RunningSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")


class RecordingShard(httpx.AsyncBaseTransport):
    """A real pool that remembers its limits, its requests, its peak concurrency and closing."""

    def __init__(self, limits: httpx.Limits) -> None:
        self.limits = limits
        self.inner = httpx.AsyncHTTPTransport(limits=limits)
        self.requests = 0
        self.active = 0
        self.peak = 0
        self.closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            return await self.inner.handle_async_request(request)
        finally:
            self.active -= 1

    async def aclose(self) -> None:
        self.closed = True
        await self.inner.aclose()


def recording(shards: list[RecordingShard]) -> ShardedTransport:
    def factory(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
        shard = RecordingShard(limits)
        shards.append(shard)
        return shard

    return ShardedTransport(16, per_shard=4, shard_factory=factory)


def sinch(
    http: httpx.AsyncClient, sim: RunningSimulator, base_url: str | None = None
) -> SinchClient:
    return SinchClient.for_api_token(
        http,
        service_plan_id=sim.plan_id,
        api_token=sim.token,
        base_url=base_url or sim.base_url,
        retry_policy=RetryPolicy(max_attempts=1),
    )


async def test_concurrent_sends_are_spread_over_the_pools(sim: RunningSimulator) -> None:
    shards: list[RecordingShard] = []
    transport = recording(shards)
    # Every call held 100 ms, so all 16 are in flight together.
    await set_faults(sim, latency_ms=100)
    async with httpx.AsyncClient(transport=transport) as http:
        client = sinch(http, sim)
        references = [new_reference() for _ in range(16)]

        await asyncio.gather(
            *(
                client.send_batch(
                    SendBatchRequest(to=["+15551230001"], body="x", client_reference=r)
                )
                for r in references
            )
        )

        assert transport.in_flight == (0, 0, 0, 0)
    assert [shard.limits.max_connections for shard in shards] == [4, 4, 4, 4]
    assert [shard.requests for shard in shards] == [4, 4, 4, 4]
    assert all(shard.closed for shard in shards)
    assert [await sim.batch_count(r) for r in references] == [1] * 16


async def test_a_failed_request_releases_its_slot(sim: RunningSimulator) -> None:
    shards: list[RecordingShard] = []
    transport = recording(shards)
    async with httpx.AsyncClient(transport=transport) as http:
        client = sinch(http, sim, base_url=f"http://127.0.0.1:{closed_port()}")

        with pytest.raises(SinchNotSent):
            await client.get_batch("01AAAAAAAAAAAAAAAAAAAAAAAA")

        assert transport.in_flight == (0, 0, 0, 0)


async def test_a_cancelled_request_releases_its_slot(sim: RunningSimulator) -> None:
    await set_faults(sim, latency_ms=1_000)
    transport = ShardedTransport(4, per_shard=2)
    async with httpx.AsyncClient(transport=transport) as http:
        client = sinch(http, sim)
        task = asyncio.create_task(client.get_batch("01AAAAAAAAAAAAAAAAAAAAAAAA"))
        await wait_until(lambda: transport.in_flight != (0, 0), message="request under way")

        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        assert transport.in_flight == (0, 0)


async def test_pools_share_the_connections_evenly() -> None:
    limits: list[httpx.Limits] = []

    def factory(shard_limits: httpx.Limits) -> httpx.AsyncBaseTransport:
        limits.append(shard_limits)
        return httpx.AsyncHTTPTransport(limits=shard_limits)

    ShardedTransport(100, per_shard=8, shard_factory=factory)

    assert len(limits) == 13
    assert {(lim.max_connections, lim.max_keepalive_connections) for lim in limits} == {(8, 8)}


@pytest.mark.parametrize(("connections", "per_shard"), [(0, 8), (8, 0)])
async def test_sizes_must_be_positive(connections: int, per_shard: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ShardedTransport(connections, per_shard=per_shard)
