"""The Sinch simulator on a live socket, with a client already authenticated for its plan.

async with running_simulator(SimulatorConfig.for_tests()) as sim:
    response = await sim.client.post(sim.batches_path, json={...})
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from smsgateway.simulator import SimulatorConfig, create_simulator_app
from tests.support.live_server import live_server

# The originator the tests' simulated plans default to (`smsgateway serve` gives its
# embedded simulator the same one); without a default, a batch without `from` ends with 410.
PLAN_DEFAULT_FROM = "+15550009999"


@dataclass(frozen=True, slots=True)
class RunningSimulator:
    base_url: str
    plan_id: str
    token: str
    client: httpx.AsyncClient

    @property
    def batches_path(self) -> str:
        return f"/xms/v1/{self.plan_id}/batches"

    def batch_path(self, batch_id: str) -> str:
        return f"{self.batches_path}/{batch_id}"

    async def batch_count(self, client_reference: str) -> int:
        """How many batches the simulator recorded with this client_reference."""
        response = await self.client.get(
            "/_admin/batches", params={"client_reference": client_reference}
        )
        response.raise_for_status()
        count = response.json()["count"]
        assert isinstance(count, int)
        return count

    async def callback_attempts(self, **filters: str) -> list[dict[str, object]]:
        response = await self.client.get("/_admin/callbacks", params=filters)
        response.raise_for_status()
        attempts: list[dict[str, object]] = response.json()["attempts"]
        return attempts


@asynccontextmanager
async def running_simulator(
    config: SimulatorConfig, *, timeout_s: float = 5.0
) -> AsyncIterator[RunningSimulator]:
    """Serve a fresh simulator; its client speaks for the config's first service plan."""
    plan_id, token = next(iter(config.service_plans.items()))
    async with (
        live_server(create_simulator_app(config)) as base_url,
        httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
        ) as client,
    ):
        yield RunningSimulator(base_url, plan_id, token, client)
