"""The unknown outcome: a send that may or may not have created a batch is never sent twice.

The simulator records the batch and then withholds the answer (timeout) or drops the connection
mid-answer (reset); the client must find the batch by ``client_reference`` and return it, and the
simulator's own record must show exactly one batch for that reference.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from smsgateway.sinch import (
    RetryPolicy,
    SinchClient,
    SinchOutcomeUnknown,
    SinchRateLimited,
    SinchServerError,
)
from smsgateway.sinch.models import SendBatchRequest
from tests.integration.sinch.sinch_live import (
    READ_TIMEOUT_S,
    MakeClient,
    RecordedSleep,
    RequestLog,
    faults_injected,
    new_reference,
    set_faults,
)
from tests.support.sinch_simulator import RunningSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

ANN = "+15551230001"


def message(reference: str | None) -> SendBatchRequest:
    return SendBatchRequest(to=[ANN], body="hello", client_reference=reference)


async def recorded_ids(sim: RunningSimulator, reference: str) -> list[str]:
    """The ids of every batch the simulator created with ``reference``, oldest first."""
    response = await sim.client.get("/_admin/batches", params={"client_reference": reference})
    response.raise_for_status()
    ids: list[str] = response.json()["batch_ids"]
    return ids


async def test_a_timed_out_send_is_found_by_reference_not_sent_again(
    client: SinchClient, sim: RunningSimulator, request_log: RequestLog
) -> None:
    await set_faults(sim, timeout_rate=1.0, scope="send", max_faults=1)
    reference = new_reference()
    started = time.monotonic()

    batch = await client.send_batch(message(reference))

    assert time.monotonic() - started >= READ_TIMEOUT_S  # the answer really was withheld
    assert (await faults_injected(sim)) == {"timeout": 1}
    assert await recorded_ids(sim, reference) == [batch.id]
    assert batch.client_reference == reference
    assert request_log.count("POST", "/batches") == 1
    assert request_log.count("GET", "/batches") == 1


async def test_a_send_reset_after_processing_is_found_by_reference(
    client: SinchClient, sim: RunningSimulator, request_log: RequestLog
) -> None:
    await set_faults(sim, reset_rate=1.0, reset_after_processing=True, max_faults=1)
    reference = new_reference()

    batch = await client.send_batch(message(reference))

    assert (await faults_injected(sim)) == {"reset": 1}
    assert await recorded_ids(sim, reference) == [batch.id]
    assert request_log.count("POST", "/batches") == 1
    assert request_log.count("GET", "/batches") == 1


async def test_a_send_reset_before_processing_is_sent_again_once(
    client: SinchClient, sim: RunningSimulator, request_log: RequestLog
) -> None:
    await set_faults(sim, reset_rate=1.0, reset_after_processing=False, max_faults=1)
    reference = new_reference()

    batch = await client.send_batch(message(reference))

    # The lookup found nothing, so this send created nothing: the client sent it again.
    assert await recorded_ids(sim, reference) == [batch.id]
    assert request_log.count("POST", "/batches") == 2
    assert request_log.count("GET", "/batches") == 1


async def test_a_failed_lookup_leaves_the_outcome_unknown(
    client: SinchClient, sim: RunningSimulator, request_log: RequestLog
) -> None:
    # The send times out, then so does the lookup: the client must neither resend nor guess.
    await set_faults(sim, timeout_rate=1.0, scope="all", max_faults=2)
    reference = new_reference()

    with pytest.raises(SinchOutcomeUnknown) as caught:
        await client.send_batch(message(reference))

    assert caught.value.operation == "send_batch"
    assert request_log.count("POST", "/batches") == 1
    ids = await recorded_ids(sim, reference)
    assert len(ids) == 1
    # Once Sinch answers again, the caller resolves the outcome the same way.
    found = await client.find_batch(reference)
    assert found is not None
    assert found.id == ids[0]


async def test_a_timed_out_send_without_reference_is_not_repeated(
    client: SinchClient, sim: RunningSimulator, request_log: RequestLog
) -> None:
    await set_faults(sim, timeout_rate=1.0, max_faults=1)

    with pytest.raises(SinchOutcomeUnknown):
        await client.send_batch(message(None))

    assert request_log.count("POST", "/batches") == 1
    assert (await sim.client.get("/_admin/stats")).json()["batches"] == 1


async def test_reads_are_repeated_after_a_timeout(
    client: SinchClient, sim: RunningSimulator
) -> None:
    sent = await client.send_batch(message(new_reference()))
    await set_faults(sim, timeout_rate=1.0, scope="all", max_faults=1)

    fetched = await client.get_batch(sent.id)

    assert fetched.id == sent.id
    assert (await faults_injected(sim)) == {"timeout": 1}


@pytest.mark.parametrize("scope", ["send", "all"])
async def test_many_concurrent_sends_under_mixed_faults_never_duplicate(
    make_client: MakeClient, sim: RunningSimulator, recorded_sleep: RecordedSleep, scope: str
) -> None:
    # scope "all" faults the lookups too, so some sends must end as an unknown outcome.
    client = make_client(retry_policy=RetryPolicy(max_attempts=6, sleep=recorded_sleep))
    await set_faults(
        sim,
        timeout_rate=0.25,
        reset_rate=0.25,
        server_error_rate=0.2,
        rate_limit_rate=0.1,
        scope=scope,
    )
    references = [new_reference() for _ in range(24)]

    outcomes = await asyncio.gather(
        *(client.send_batch(message(reference)) for reference in references),
        return_exceptions=True,
    )

    assert sum((await faults_injected(sim)).values()) > 0
    for reference, outcome in zip(references, outcomes, strict=True):
        ids = await recorded_ids(sim, reference)
        if isinstance(outcome, SinchOutcomeUnknown):
            assert len(ids) <= 1
        elif isinstance(outcome, BaseException):
            # Any other error proves that nothing was created.
            assert isinstance(outcome, SinchServerError | SinchRateLimited), repr(outcome)
            assert ids == []
        else:
            assert ids == [outcome.id]
