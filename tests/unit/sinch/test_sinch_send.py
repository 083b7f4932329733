"""A send whose outcome is unknown is never repeated blindly: the client first asks Sinch for a
batch with the send's client_reference."""

from __future__ import annotations

import httpx
import pytest

from smsgateway.sinch.errors import (
    SinchNotSent,
    SinchOutcomeUnknown,
    SinchServerError,
)
from smsgateway.sinch.models import SendBatchRequest
from tests.unit.sinch.fakes import (
    BATCH_ID,
    BATCHES_PATH,
    FakeTime,
    Routes,
    batch_json,
    page_json,
)

REFERENCE = "msg_123"
CREATED = httpx.Response(201, json=batch_json())
FOUND = httpx.Response(200, json=page_json(batch_json(id="EXISTING")))
NOTHING = httpx.Response(200, json=page_json())


def text_batch(reference: str | None = REFERENCE) -> SendBatchRequest:
    return SendBatchRequest(to=["+15551230001"], body="hello", client_reference=reference)


def posts(routes: Routes) -> list[httpx.Request]:
    return routes.calls("POST", BATCHES_PATH)


def lookups(routes: Routes) -> list[httpx.Request]:
    return routes.calls("GET", BATCHES_PATH)


@pytest.mark.asyncio
@pytest.mark.parametrize("failure", [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError])
async def test_an_unknown_send_that_exists_is_not_sent_again(
    make_client, failure: type[httpx.TransportError]
) -> None:
    routes = Routes().add("POST", BATCHES_PATH, failure, CREATED).add("GET", BATCHES_PATH, FOUND)
    client = make_client(routes)

    batch = await client.send_batch(text_batch(), request_id="req-1")

    assert batch.id == "EXISTING"
    assert len(posts(routes)) == 1
    (lookup,) = lookups(routes)
    assert lookup.url.params["client_reference"] == REFERENCE
    assert lookup.headers["x-request-id"] == "req-1"


@pytest.mark.asyncio
async def test_the_lookup_waits_a_backoff_first(make_client, fake_time: FakeTime) -> None:
    routes = Routes().add("POST", BATCHES_PATH, httpx.ReadTimeout).add("GET", BATCHES_PATH, FOUND)
    client = make_client(routes)

    await client.send_batch(text_batch())

    # The wait gives a Sinch that is slow to store the batch a chance to show it.
    assert fake_time.sleeps == [0.25]


@pytest.mark.asyncio
async def test_an_unknown_send_that_does_not_exist_is_sent_once_more(make_client, observer) -> None:
    routes = (
        Routes()
        .add("POST", BATCHES_PATH, httpx.ReadTimeout, CREATED)
        .add("GET", BATCHES_PATH, NOTHING)
    )
    client = make_client(routes)

    batch = await client.send_batch(text_batch())

    assert batch.id == BATCH_ID
    assert len(posts(routes)) == 2
    assert len(lookups(routes)) == 1
    assert posts(routes)[0].content == posts(routes)[1].content
    assert observer.retries == [("send_batch", "outcome_unknown")]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "lookup_failure",
    [httpx.Response(503), httpx.ConnectError, httpx.ReadTimeout, httpx.Response(200, json={})],
)
async def test_a_failed_lookup_leaves_the_outcome_unknown(
    make_client, lookup_failure: httpx.Response | type[httpx.TransportError]
) -> None:
    routes = (
        Routes()
        .add("POST", BATCHES_PATH, httpx.ReadTimeout, CREATED)
        .add("GET", BATCHES_PATH, lookup_failure)
    )
    client = make_client(routes)

    with pytest.raises(SinchOutcomeUnknown, match="lookup by client_reference failed") as caught:
        await client.send_batch(text_batch())

    assert len(posts(routes)) == 1
    assert len(lookups(routes)) == 1  # no retries of the lookup
    assert caught.value.operation == "send_batch"
    assert caught.value.__cause__ is not None


@pytest.mark.asyncio
async def test_without_client_reference_an_unknown_send_is_raised_as_is(make_client) -> None:
    routes = Routes().add("POST", BATCHES_PATH, httpx.ReadTimeout, CREATED)
    client = make_client(routes)

    with pytest.raises(SinchOutcomeUnknown):
        await client.send_batch(text_batch(reference=None))

    assert len(posts(routes)) == 1
    assert not lookups(routes)


@pytest.mark.asyncio
async def test_a_5xx_send_is_looked_up_before_sending_again(make_client) -> None:
    routes = (
        Routes()
        .add("POST", BATCHES_PATH, httpx.Response(500), CREATED)
        .add("GET", BATCHES_PATH, FOUND)
    )
    client = make_client(routes)

    batch = await client.send_batch(text_batch())
    assert batch.id == "EXISTING"
    assert batch.found_by_lookup
    assert len(posts(routes)) == 1


@pytest.mark.asyncio
async def test_a_5xx_send_not_found_is_sent_again(make_client) -> None:
    routes = (
        Routes()
        .add("POST", BATCHES_PATH, httpx.Response(503), CREATED)
        .add("GET", BATCHES_PATH, NOTHING)
    )
    client = make_client(routes)

    sent = await client.send_batch(text_batch())
    assert sent.id == BATCH_ID
    assert not sent.found_by_lookup
    assert len(posts(routes)) == 2


@pytest.mark.asyncio
async def test_a_5xx_send_without_reference_is_not_repeated(make_client) -> None:
    routes = Routes().add("POST", BATCHES_PATH, httpx.Response(502), CREATED)
    client = make_client(routes)

    with pytest.raises(SinchServerError):
        await client.send_batch(text_batch(reference=None))

    assert len(posts(routes)) == 1


@pytest.mark.asyncio
async def test_a_malformed_201_is_resolved_by_lookup(make_client) -> None:
    routes = (
        Routes()
        .add("POST", BATCHES_PATH, httpx.Response(201, json={"oops": True}))
        .add("GET", BATCHES_PATH, FOUND)
    )
    client = make_client(routes)

    assert (await client.send_batch(text_batch())).id == "EXISTING"
    assert len(posts(routes)) == 1


@pytest.mark.asyncio
async def test_a_batch_with_another_reference_is_not_adopted(make_client) -> None:
    # A server (or proxy) that ignores the filter must not make us take someone else's batch.
    unfiltered = httpx.Response(200, json=page_json(batch_json(client_reference="msg_999")))
    routes = (
        Routes()
        .add("POST", BATCHES_PATH, httpx.ReadTimeout, CREATED)
        .add("GET", BATCHES_PATH, unfiltered)
    )
    client = make_client(routes)

    assert (await client.send_batch(text_batch())).id == BATCH_ID
    assert len(posts(routes)) == 2


@pytest.mark.asyncio
async def test_when_attempts_run_out_the_last_unknown_is_still_looked_up(
    make_client, fake_time: FakeTime
) -> None:
    routes = (
        Routes()
        .add("POST", BATCHES_PATH, httpx.ReadTimeout)
        .add("GET", BATCHES_PATH, NOTHING, NOTHING, NOTHING, FOUND)
    )
    client = make_client(routes)

    assert (await client.send_batch(text_batch())).id == "EXISTING"
    assert len(posts(routes)) == 4
    assert len(lookups(routes)) == 4
    assert fake_time.sleeps == [0.25, 0.5, 1.0]


@pytest.mark.asyncio
async def test_when_attempts_run_out_and_nothing_is_found_the_outcome_stays_unknown(
    make_client,
) -> None:
    routes = Routes().add("POST", BATCHES_PATH, httpx.ReadTimeout).add("GET", BATCHES_PATH, NOTHING)
    client = make_client(routes)

    with pytest.raises(SinchOutcomeUnknown):
        await client.send_batch(text_batch())

    assert len(posts(routes)) == 4


@pytest.mark.asyncio
async def test_rate_limited_and_not_sent_sends_need_no_lookup(make_client) -> None:
    routes = Routes().add(
        "POST",
        BATCHES_PATH,
        httpx.Response(429, headers={"Retry-After": "1"}),
        httpx.ConnectError,
        CREATED,
    )
    client = make_client(routes)

    assert (await client.send_batch(text_batch())).id == BATCH_ID
    assert len(posts(routes)) == 3
    assert not lookups(routes)


@pytest.mark.asyncio
async def test_not_sent_until_the_end_is_not_sent(make_client) -> None:
    routes = Routes().add("POST", BATCHES_PATH, httpx.ConnectError)
    client = make_client(routes)

    with pytest.raises(SinchNotSent):
        await client.send_batch(text_batch())

    assert not lookups(routes)
