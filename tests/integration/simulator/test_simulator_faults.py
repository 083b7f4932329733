"""Injected faults over a real socket: 5xx, 429, 400 refusals, unanswered requests, resets,
the mps cap."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from smsgateway.simulator import FaultSettings, SimulatorConfig
from tests.support.sinch_simulator import RunningSimulator, running_simulator

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shared_sim() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(SimulatorConfig.for_tests()) as running:
        yield running


@pytest_asyncio.fixture
async def sim(shared_sim: RunningSimulator) -> RunningSimulator:
    (await shared_sim.client.post("/_admin/reset")).raise_for_status()
    return shared_sim


async def set_faults(sim: RunningSimulator, **settings: object) -> None:
    response = await sim.client.put("/_admin/faults", json=settings)
    assert response.status_code == 200, response.text


def batch(reference: str, recipients: int = 1) -> dict[str, object]:
    return {
        "to": [f"+1555123{n:04d}" for n in range(recipients)],
        "body": "x",
        "client_reference": reference,
    }


async def test_server_errors_record_nothing(sim: RunningSimulator) -> None:
    await set_faults(sim, server_error_rate=1.0, server_error_status=503)

    response = await sim.client.post(sim.batches_path, json=batch("e1"))

    assert response.status_code == 503
    assert set(response.json()) == {"code", "text"}
    assert await sim.batch_count("e1") == 0


async def test_rate_limit_answers_429_with_retry_after(sim: RunningSimulator) -> None:
    await set_faults(sim, rate_limit_rate=1.0, retry_after_s=7)

    response = await sim.client.post(sim.batches_path, json=batch("r1"))

    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert await sim.batch_count("r1") == 0


async def test_refusal_answers_400_records_nothing_and_spares_reads(
    sim: RunningSimulator,
) -> None:
    await set_faults(sim, refusal_rate=1.0, scope="all")

    response = await sim.client.post(sim.batches_path, json=batch("x1"))

    assert response.status_code == 400
    assert response.json()["code"] == "syntax_constraint_violation"
    assert await sim.batch_count("x1") == 0
    # A lookup is a read: Sinch never refuses it for being a batch it would not send.
    listed = await sim.client.get(sim.batches_path, params={"client_reference": "x1"})
    assert listed.status_code == 200


async def test_timeout_records_the_batch_but_never_answers(sim: RunningSimulator) -> None:
    await set_faults(sim, timeout_rate=1.0)

    with pytest.raises(httpx.ReadTimeout):
        await sim.client.post(sim.batches_path, json=batch("t1"), timeout=0.3)

    # The unknown-outcome case: the client saw nothing, yet Sinch has the batch.
    assert await sim.batch_count("t1") == 1
    listed = await sim.client.get(sim.batches_path, params={"client_reference": "t1"})
    assert listed.status_code == 200
    assert listed.json()["count"] == 1


async def test_reset_drops_the_connection_mid_answer(sim: RunningSimulator) -> None:
    await set_faults(sim, reset_rate=1.0)

    with pytest.raises(httpx.RemoteProtocolError):
        await sim.client.post(sim.batches_path, json=batch("c1"))

    assert await sim.batch_count("c1") == 1


async def test_reset_before_processing_records_nothing(sim: RunningSimulator) -> None:
    await set_faults(sim, reset_rate=1.0, reset_after_processing=False)

    with pytest.raises(httpx.RemoteProtocolError):
        await sim.client.post(sim.batches_path, json=batch("c2"))

    assert await sim.batch_count("c2") == 0


async def test_faults_in_send_scope_spare_other_calls(sim: RunningSimulator) -> None:
    await set_faults(sim, server_error_rate=1.0)

    listed = await sim.client.get(sim.batches_path)
    dry_run = await sim.client.post(sim.batches_path + "/dry_run", json=batch("d"))

    assert listed.status_code == 200
    assert dry_run.status_code == 200


async def test_faults_in_all_scope_hit_every_sinch_call(sim: RunningSimulator) -> None:
    await set_faults(sim, server_error_rate=1.0, scope="all")

    listed = await sim.client.get(sim.batches_path)
    admin = await sim.client.get("/_admin/stats")

    assert listed.status_code == 500
    assert admin.status_code == 200


async def test_max_faults_fails_only_the_next_requests(sim: RunningSimulator) -> None:
    await set_faults(sim, server_error_rate=1.0, max_faults=2)

    statuses = [
        (await sim.client.post(sim.batches_path, json=batch("m1"))).status_code for _ in range(3)
    ]
    stats = (await sim.client.get("/_admin/stats")).json()

    assert statuses == [500, 500, 201]
    assert stats["faults_injected"] == {"server_error": 2}
    assert stats["batches_by_client_reference"] == {"m1": 1}


async def test_mps_cap_counts_recipients(sim: RunningSimulator) -> None:
    await set_faults(sim, mps_cap=10)

    first = await sim.client.post(sim.batches_path, json=batch("cap", recipients=8))
    second = await sim.client.post(sim.batches_path, json=batch("cap", recipients=5))

    assert first.status_code == 201
    assert second.status_code == 429
    assert int(second.headers["retry-after"]) >= 1
    assert second.json()["code"] == "too_many_requests"
    assert await sim.batch_count("cap") == 1


async def test_latency_delays_answers(sim: RunningSimulator) -> None:
    await set_faults(sim, latency_ms=150, jitter_ms=10)

    started = time.monotonic()
    response = await sim.client.get(sim.batches_path)
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert elapsed >= 0.15


async def test_fault_settings_are_validated_and_clearable(sim: RunningSimulator) -> None:
    too_much = await sim.client.put(
        "/_admin/faults", json={"server_error_rate": 0.7, "timeout_rate": 0.5}
    )
    await set_faults(sim, rate_limit_rate=0.5)
    current = (await sim.client.get("/_admin/faults")).json()
    cleared = (await sim.client.delete("/_admin/faults")).json()

    assert too_much.status_code == 422
    assert current["rate_limit_rate"] == 0.5
    assert FaultSettings.model_validate(cleared) == FaultSettings()
