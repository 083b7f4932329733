"""Every failure kind, injected by the simulator at run time, as the client meets it on a socket.

The retry policy's sleep is recorded rather than waited (see conftest), except in the one test
that checks a real Retry-After wait end to end.
"""

from __future__ import annotations

import time

import httpx
import pytest

from smsgateway.sinch import (
    RetryPolicy,
    SinchClient,
    SinchNotSent,
    SinchRateLimited,
    SinchRejected,
    SinchServerError,
    SinchUnauthorized,
)
from smsgateway.sinch.models import DeliveryReportType, SendBatchRequest
from tests.integration.sinch.sinch_live import (
    MakeClient,
    RecordedSleep,
    RequestLog,
    closed_port,
    faults_injected,
    new_reference,
    set_faults,
)
from tests.support.sinch_simulator import RunningSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

ANN = "+15551230001"


def message(reference: str | None = None) -> SendBatchRequest:
    return SendBatchRequest(to=[ANN], body="hello", client_reference=reference)


async def test_server_errors_are_retried_until_the_send_succeeds(
    client: SinchClient,
    sim: RunningSimulator,
    recorded_sleep: RecordedSleep,
    request_log: RequestLog,
) -> None:
    await set_faults(sim, server_error_rate=1.0, server_error_status=503, max_faults=2)
    reference = new_reference()

    batch = await client.send_batch(message(reference))

    assert batch.client_reference == reference
    assert await sim.batch_count(reference) == 1
    assert (await faults_injected(sim)) == {"server_error": 2}
    # A 5xx may hide a processed send: each one is followed by a lookup before sending again.
    assert request_log.count("POST", "/batches") == 3
    assert request_log.count("GET", "/batches") == 2
    assert len(recorded_sleep.waits) == 2


async def test_server_errors_are_given_up_after_the_policys_attempts(
    client: SinchClient,
    sim: RunningSimulator,
    policy: RetryPolicy,
    request_log: RequestLog,
) -> None:
    await set_faults(sim, server_error_rate=1.0, server_error_status=502)
    reference = new_reference()

    with pytest.raises(SinchServerError) as caught:
        await client.send_batch(message(reference))

    assert caught.value.status == 502
    assert caught.value.code == "internal_error"
    assert request_log.count("POST", "/batches") == policy.max_attempts
    assert await sim.batch_count(reference) == 0


async def test_a_server_error_without_a_reference_is_not_repeated(
    client: SinchClient, sim: RunningSimulator, request_log: RequestLog
) -> None:
    await set_faults(sim, server_error_rate=1.0, max_faults=1)

    with pytest.raises(SinchServerError):
        await client.send_batch(message(None))

    # Without a client_reference the client cannot tell whether the batch exists: never resend.
    assert request_log.count("POST", "/batches") == 1


async def test_reads_are_retried_after_server_errors(
    client: SinchClient, sim: RunningSimulator, recorded_sleep: RecordedSleep
) -> None:
    sent = await client.send_batch(message(new_reference()))
    await set_faults(sim, server_error_rate=1.0, scope="all", max_faults=2)

    fetched = await client.get_batch(sent.id)

    assert fetched.id == sent.id
    assert (await faults_injected(sim)) == {"server_error": 2}
    assert len(recorded_sleep.waits) == 2


async def test_rate_limit_honours_retry_after(
    client: SinchClient,
    sim: RunningSimulator,
    recorded_sleep: RecordedSleep,
    request_log: RequestLog,
) -> None:
    await set_faults(sim, rate_limit_rate=1.0, retry_after_s=7, max_faults=1)
    reference = new_reference()

    await client.send_batch(message(reference))

    assert recorded_sleep.waits == [7.0]
    # A 429 means Sinch did not take the batch: it is sent again without a lookup.
    assert request_log.count("POST", "/batches") == 2
    assert request_log.count("GET", "/batches") == 0
    assert await sim.batch_count(reference) == 1


async def test_rate_limit_retry_after_is_capped_by_the_policy(
    make_client: MakeClient, sim: RunningSimulator, recorded_sleep: RecordedSleep
) -> None:
    client = make_client(retry_policy=RetryPolicy(max_retry_after=2.5, sleep=recorded_sleep))
    await set_faults(sim, rate_limit_rate=1.0, retry_after_s=600, max_faults=1)

    await client.send_batch(message(new_reference()))

    assert recorded_sleep.waits == [2.5]


async def test_rate_limit_given_up_carries_retry_after(
    client: SinchClient,
    sim: RunningSimulator,
    policy: RetryPolicy,
    recorded_sleep: RecordedSleep,
) -> None:
    await set_faults(sim, rate_limit_rate=1.0, retry_after_s=3)
    reference = new_reference()

    with pytest.raises(SinchRateLimited) as caught:
        await client.send_batch(message(reference))

    assert caught.value.retry_after == 3.0
    assert caught.value.code == "too_many_requests"
    assert recorded_sleep.waits == [3.0] * (policy.max_attempts - 1)
    assert await sim.batch_count(reference) == 0


async def test_rate_limit_waits_for_real_with_the_default_sleep(
    make_client: MakeClient, sim: RunningSimulator, request_log: RequestLog
) -> None:
    # The one test that waits: Retry-After 1 s must hold the second attempt back that long.
    client = make_client(retry_policy=RetryPolicy(max_attempts=2))
    await set_faults(sim, rate_limit_rate=1.0, retry_after_s=1, max_faults=1)
    started = time.monotonic()

    await client.send_batch(message(new_reference()))

    assert time.monotonic() - started >= 1.0
    assert request_log.count("POST", "/batches") == 2


async def test_a_reset_read_is_repeated(
    client: SinchClient, sim: RunningSimulator, recorded_sleep: RecordedSleep
) -> None:
    sent = await client.send_batch(message(new_reference()))
    await set_faults(sim, reset_rate=1.0, scope="all", max_faults=1)

    fetched = await client.get_batch(sent.id)

    assert fetched.id == sent.id
    assert (await faults_injected(sim)) == {"reset": 1}
    assert len(recorded_sleep.waits) == 1


async def test_connect_failure_is_not_sent_and_nothing_is_recorded(
    make_client: MakeClient,
    sim: RunningSimulator,
    policy: RetryPolicy,
    recorded_sleep: RecordedSleep,
    request_log: RequestLog,
) -> None:
    client = make_client(base_url=f"http://127.0.0.1:{closed_port()}")
    reference = new_reference()

    with pytest.raises(SinchNotSent) as caught:
        await client.send_batch(message(reference))

    assert caught.value.operation == "send_batch"
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    # Nothing reached Sinch, so the send is simply repeated: no lookup in between.
    assert request_log.count("POST", "/batches") == policy.max_attempts
    assert request_log.count("GET", "/batches") == 0
    assert len(recorded_sleep.waits) == policy.max_attempts - 1
    assert await sim.batch_count(reference) == 0


async def test_an_invalid_recipient_is_rejected_with_sinchs_code_and_text(
    client: SinchClient, sim: RunningSimulator, request_log: RequestLog
) -> None:
    reference = new_reference()

    with pytest.raises(SinchRejected) as caught:
        await client.send_batch(
            SendBatchRequest(to=["+0123456789"], body="hello", client_reference=reference)
        )

    assert caught.value.status == 400
    assert caught.value.code == "syntax_invalid_parameter_format"
    assert caught.value.text == "to: '+0123456789' is not a valid MSISDN."
    assert "+0123456789" not in str(caught.value)  # masked in the message, kept in .text
    assert request_log.count("POST", "/batches") == 1
    assert await sim.batch_count(reference) == 0


async def test_a_constraint_violation_is_rejected(client: SinchClient) -> None:
    with pytest.raises(SinchRejected) as caught:
        # Sinch caps an alphanumeric or numeric sender's length; the client leaves that to Sinch.
        await client.send_batch(SendBatchRequest(to=[ANN], body="hello", from_="x" * 129))

    assert caught.value.status == 400
    assert caught.value.code == "syntax_constraint_violation"


async def test_a_delivery_report_without_a_callback_url_is_forbidden(
    client: SinchClient,
) -> None:
    with pytest.raises(SinchRejected) as caught:
        await client.send_batch(
            SendBatchRequest(to=[ANN], body="hello", delivery_report=DeliveryReportType.SUMMARY)
        )

    assert caught.value.status == 403
    assert caught.value.code == "missing_callback_url"


async def test_a_wrong_token_is_unauthorized_and_not_retried(
    make_client: MakeClient,
    sim: RunningSimulator,
    request_log: RequestLog,
) -> None:
    client = make_client(api_token="not-the-token")
    reference = new_reference()

    with pytest.raises(SinchUnauthorized) as caught:
        await client.send_batch(message(reference))

    assert caught.value.status == 401
    # Sinch answers 401 with an empty text/plain body.
    assert (caught.value.code, caught.value.text) == (None, None)
    assert request_log.count("POST", "/batches") == 1
    assert await sim.batch_count(reference) == 0
