"""The client's operations on the wire (paths, params, headers) and its retries of 429, 5xx
and failures where nothing reached Sinch."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from smsgateway.sinch.auth import ApiTokenAuth
from smsgateway.sinch.client import SinchClient
from smsgateway.sinch.errors import (
    SinchConflict,
    SinchError,
    SinchNotSent,
    SinchOutcomeUnknown,
    SinchRateLimited,
    SinchRejected,
    SinchServerError,
)
from smsgateway.sinch.models import DeliveryReportType, SendBatchRequest
from smsgateway.sinch.retry import RetryPolicy
from tests.unit.sinch.fakes import (
    API_TOKEN,
    BATCH_ID,
    BATCHES_PATH,
    FakeTime,
    RecordingObserver,
    Routes,
    batch_json,
    page_json,
)

BATCH_PATH = f"{BATCHES_PATH}/{BATCH_ID}"


def text_batch(**options: object) -> SendBatchRequest:
    return SendBatchRequest.model_validate(
        {"to": ["+15551230001"], "from": "+15550009999", "body": "hello", **options}
    )


@pytest.mark.asyncio
async def test_send_posts_the_batch_with_token_and_request_id(make_client) -> None:
    routes = Routes().add("POST", BATCHES_PATH, httpx.Response(201, json=batch_json()))
    client = make_client(routes)

    batch = await client.send_batch(
        text_batch(client_reference="msg_123", delivery_report=DeliveryReportType.PER_RECIPIENT),
        request_id="req-1",
    )

    assert batch.id == BATCH_ID
    (request,) = routes.requests
    assert request.url == f"https://us.sms.api.sinch.com{BATCHES_PATH}"
    assert request.headers["authorization"] == f"Bearer {API_TOKEN}"
    assert request.headers["x-request-id"] == "req-1"
    assert request.headers["accept"] == "application/json"
    assert json.loads(request.content) == {
        "type": "mt_text",
        "to": ["+15551230001"],
        "from": "+15550009999",
        "body": "hello",
        "client_reference": "msg_123",
        "delivery_report": "per_recipient",
    }


@pytest.mark.asyncio
async def test_request_ids_come_from_the_factory_when_not_given(make_client) -> None:
    ids = iter(["gen-1", "gen-2"])
    routes = Routes().add("GET", BATCH_PATH, httpx.Response(200, json=batch_json()))
    client = make_client(routes, request_id_factory=lambda: next(ids))

    await client.get_batch(BATCH_ID)
    await client.get_batch(BATCH_ID, request_id="given")
    await client.get_batch(BATCH_ID)

    assert [r.headers["x-request-id"] for r in routes.requests] == ["gen-1", "given", "gen-2"]


@pytest.mark.asyncio
async def test_every_attempt_of_one_call_carries_the_same_request_id(make_client) -> None:
    routes = Routes().add(
        "GET", BATCH_PATH, httpx.Response(503), httpx.Response(200, json=batch_json())
    )
    client = make_client(routes)

    await client.get_batch(BATCH_ID, request_id="req-9")

    assert [r.headers["x-request-id"] for r in routes.requests] == ["req-9", "req-9"]


@pytest.mark.asyncio
async def test_dry_run(make_client) -> None:
    answer = {
        "number_of_recipients": 2,
        "number_of_messages": 2,
        "per_recipient": [
            {"recipient": "15551230001", "number_of_parts": 1, "body": "hi", "encoding": "text"}
        ],
    }
    routes = Routes().add("POST", f"{BATCHES_PATH}/dry_run", httpx.Response(200, json=answer))
    client = make_client(routes)

    result = await client.dry_run(text_batch(), number_of_recipients=2)

    assert result.number_of_messages == 2
    params = routes.requests[0].url.params
    assert (params["per_recipient"], params["number_of_recipients"]) == ("true", "2")


@pytest.mark.asyncio
async def test_list_batches_sends_its_filters(make_client) -> None:
    routes = Routes().add("GET", BATCHES_PATH, httpx.Response(200, json=page_json(batch_json())))
    client = make_client(routes)

    page = await client.list_batches(
        page=2,
        page_size=10,
        client_reference="msg_123",
        sender="+15550009999",
        start_date=datetime(2026, 11, 1, tzinfo=UTC),
        end_date=datetime(2026, 11, 2, tzinfo=UTC),
    )

    assert page.batches[0].id == BATCH_ID
    assert dict(routes.requests[0].url.params) == {
        "page": "2",
        "page_size": "10",
        "client_reference": "msg_123",
        "from": "+15550009999",
        "start_date": "2026-11-01T00:00:00.000Z",
        "end_date": "2026-11-02T00:00:00.000Z",
    }


@pytest.mark.asyncio
@pytest.mark.parametrize(("page", "page_size"), [(-1, 10), (0, 0), (0, 101)])
async def test_list_batches_refuses_bad_paging(make_client, page: int, page_size: int) -> None:
    client = make_client(Routes())

    with pytest.raises(ValueError, match="page"):
        await client.list_batches(page=page, page_size=page_size)


@pytest.mark.asyncio
async def test_iter_batches_walks_every_page(make_client) -> None:
    def pages(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params["page"])
        batches = [batch_json(id=f"B{number}{i}") for i in range(2 if number < 2 else 1)]
        return httpx.Response(
            200, json={"count": 5, "page": number, "page_size": 2, "batches": batches}
        )

    routes = Routes().add("GET", BATCHES_PATH, pages)
    client = make_client(routes)

    ids = [batch.id async for batch in client.iter_batches(page_size=2, client_reference="x")]

    assert ids == ["B00", "B01", "B10", "B11", "B20"]
    assert len(routes.requests) == 3


@pytest.mark.asyncio
async def test_find_batch_returns_the_earliest_match_and_ignores_others(make_client) -> None:
    page = page_json(
        batch_json(id="LATER", created_at="2026-11-26T10:00:05Z"),
        batch_json(id="OTHER", client_reference="msg_999", created_at="2026-11-26T09:00:00Z"),
        batch_json(id="FIRST", created_at="2026-11-26T10:00:00Z"),
    )
    client = make_client(Routes().add("GET", BATCHES_PATH, httpx.Response(200, json=page)))

    found = await client.find_batch("msg_123")

    assert found is not None
    assert found.id == "FIRST"


@pytest.mark.asyncio
async def test_find_batch_finds_nothing(make_client) -> None:
    client = make_client(Routes().add("GET", BATCHES_PATH, httpx.Response(200, json=page_json())))

    assert await client.find_batch("msg_123") is None


@pytest.mark.asyncio
async def test_cancel_batch(make_client) -> None:
    routes = Routes().add("DELETE", BATCH_PATH, httpx.Response(200, json=batch_json(canceled=True)))
    client = make_client(routes)

    batch = await client.cancel_batch(BATCH_ID)

    assert batch.canceled is True


@pytest.mark.asyncio
async def test_cancelling_a_sent_batch_is_a_conflict_and_not_retried(make_client) -> None:
    body = {"code": "batch_already_sent", "text": "too late"}
    routes = Routes().add("DELETE", BATCH_PATH, httpx.Response(409, json=body))
    client = make_client(routes)

    with pytest.raises(SinchConflict) as caught:
        await client.cancel_batch(BATCH_ID)

    assert caught.value.code == "batch_already_sent"
    assert len(routes.requests) == 1


@pytest.mark.asyncio
async def test_a_cancel_with_unknown_outcome_is_not_repeated(make_client) -> None:
    routes = Routes().add("DELETE", BATCH_PATH, httpx.ReadTimeout)
    client = make_client(routes)

    with pytest.raises(SinchOutcomeUnknown):
        await client.cancel_batch(BATCH_ID)

    assert len(routes.requests) == 1


@pytest.mark.asyncio
async def test_batch_delivery_report(make_client) -> None:
    report = {
        "type": "delivery_report_sms",
        "batch_id": BATCH_ID,
        "total_message_count": 1,
        "statuses": [{"code": 0, "status": "Delivered", "count": 1}],
    }
    routes = Routes().add("GET", f"{BATCH_PATH}/delivery_report", httpx.Response(200, json=report))
    client = make_client(routes)

    result = await client.batch_delivery_report(
        BATCH_ID, report_type="full", statuses=["Delivered", "Failed"], codes=[0, 402]
    )

    assert result.statuses[0].status == "Delivered"
    assert dict(routes.requests[0].url.params) == {
        "type": "full",
        "status": "Delivered,Failed",
        "code": "0,402",
    }


@pytest.mark.asyncio
async def test_recipient_delivery_report_keeps_the_plus_in_the_path(make_client) -> None:
    report = {
        "type": "recipient_delivery_report_sms",
        "batch_id": BATCH_ID,
        "recipient": "+15551230001",
        "code": 401,
        "status": "Dispatched",
        "at": "2026-11-26T10:02:42.148Z",
    }
    routes = Routes().add(
        "GET", f"{BATCH_PATH}/delivery_report/+15551230001", httpx.Response(200, json=report)
    )
    client = make_client(routes)

    result = await client.recipient_delivery_report(BATCH_ID, "+15551230001")

    assert result.status == "Dispatched"
    assert routes.requests[0].url.raw_path.endswith(b"/delivery_report/+15551230001")


@pytest.mark.asyncio
async def test_path_segments_are_escaped(make_client) -> None:
    routes = Routes().add("GET", f"{BATCHES_PATH}/a/b", httpx.Response(404))
    client = make_client(routes)

    with pytest.raises(SinchRejected):
        await client.get_batch("a/b")

    assert routes.requests[0].url.raw_path == f"{BATCHES_PATH}/a%2Fb".encode()


@pytest.mark.asyncio
async def test_429_honours_retry_after(make_client, fake_time: FakeTime, observer) -> None:
    routes = Routes().add(
        "GET",
        BATCH_PATH,
        httpx.Response(429, headers={"Retry-After": "7"}),
        httpx.Response(200, json=batch_json()),
    )
    client = make_client(routes)

    await client.get_batch(BATCH_ID)

    assert fake_time.sleeps == [7.0]
    assert observer.retries == [("get_batch", "rate_limited")]


@pytest.mark.asyncio
async def test_429_retry_after_is_capped(make_client, fake_time: FakeTime) -> None:
    routes = Routes().add(
        "GET",
        BATCH_PATH,
        httpx.Response(429, headers={"Retry-After": "3600"}),
        httpx.Response(200, json=batch_json()),
    )
    client = make_client(routes)

    await client.get_batch(BATCH_ID)

    assert fake_time.sleeps == [30.0]  # the policy's max_retry_after


@pytest.mark.asyncio
async def test_429_without_retry_after_backs_off(make_client, fake_time: FakeTime) -> None:
    routes = Routes().add(
        "GET", BATCH_PATH, httpx.Response(429), httpx.Response(200, json=batch_json())
    )
    client = make_client(routes)

    await client.get_batch(BATCH_ID)

    assert fake_time.sleeps == [0.25]


@pytest.mark.asyncio
async def test_a_rate_limit_that_outlasts_the_attempts_is_raised_with_retry_after(
    make_client, fake_time: FakeTime
) -> None:
    routes = Routes().add("GET", BATCH_PATH, httpx.Response(429, headers={"Retry-After": "2"}))
    client = make_client(routes)

    with pytest.raises(SinchRateLimited) as caught:
        await client.get_batch(BATCH_ID)

    assert caught.value.retry_after == 2.0
    assert len(routes.requests) == 4
    assert fake_time.sleeps == [2.0, 2.0, 2.0]


@pytest.mark.asyncio
async def test_5xx_is_retried_with_backoff_then_given_up(
    make_client, fake_time: FakeTime, observer: RecordingObserver
) -> None:
    routes = Routes().add("GET", BATCH_PATH, httpx.Response(503))
    client = make_client(routes)

    with pytest.raises(SinchServerError) as caught:
        await client.get_batch(BATCH_ID)

    assert caught.value.status == 503
    assert len(routes.requests) == 4
    assert fake_time.sleeps == [0.25, 0.5, 1.0]
    assert observer.retries == [("get_batch", "server_error")] * 3
    assert observer.finished == [("get_batch", "server_error")] * 4
    assert observer.errors == [("get_batch", "http_503")] * 4
    assert observer.answers == [("get_batch", 503)] * 4


@pytest.mark.asyncio
async def test_5xx_then_success(make_client) -> None:
    routes = Routes().add(
        "GET",
        BATCH_PATH,
        httpx.Response(500),
        httpx.Response(502),
        httpx.Response(200, json=batch_json()),
    )
    client = make_client(routes)

    assert (await client.get_batch(BATCH_ID)).id == BATCH_ID
    assert len(routes.requests) == 3


@pytest.mark.asyncio
async def test_a_connect_error_is_retried(make_client, observer: RecordingObserver) -> None:
    routes = Routes().add(
        "GET", BATCH_PATH, httpx.ConnectError, httpx.Response(200, json=batch_json())
    )
    client = make_client(routes)

    assert (await client.get_batch(BATCH_ID)).id == BATCH_ID
    assert observer.retries == [("get_batch", "not_sent")]
    assert observer.finished == [("get_batch", "not_sent"), ("get_batch", "ok")]
    assert observer.answers == [("get_batch", 200)], "no answer to the failed connect"


@pytest.mark.asyncio
async def test_a_send_is_retried_after_a_connect_error(make_client) -> None:
    routes = Routes().add(
        "POST", BATCHES_PATH, httpx.ConnectTimeout, httpx.Response(201, json=batch_json())
    )
    client = make_client(routes)

    assert (await client.send_batch(text_batch(client_reference="msg_123"))).id == BATCH_ID
    assert len(routes.calls("POST", BATCHES_PATH)) == 2
    assert not routes.calls("GET", BATCHES_PATH)  # nothing was sent, nothing to look up


@pytest.mark.asyncio
async def test_connect_errors_end_in_not_sent(make_client) -> None:
    client = make_client(Routes().add("POST", BATCHES_PATH, httpx.ConnectError))

    with pytest.raises(SinchNotSent):
        await client.send_batch(text_batch(client_reference="msg_123"))


@pytest.mark.asyncio
async def test_a_read_timeout_on_a_read_is_retried(make_client) -> None:
    routes = Routes().add(
        "GET", BATCH_PATH, httpx.ReadTimeout, httpx.Response(200, json=batch_json())
    )
    client = make_client(routes)

    assert (await client.get_batch(BATCH_ID)).id == BATCH_ID


@pytest.mark.asyncio
@pytest.mark.parametrize("status", [400, 401, 403, 404, 409])
async def test_permanent_errors_are_not_retried(make_client, status: int) -> None:
    routes = Routes().add("GET", BATCH_PATH, httpx.Response(status))
    client = make_client(routes)

    with pytest.raises(SinchError):
        await client.get_batch(BATCH_ID)

    assert len(routes.requests) == 1


@pytest.mark.asyncio
async def test_the_deadline_stops_retries(fake_time: FakeTime, make_client) -> None:
    policy = RetryPolicy(
        max_attempts=100,
        base_delay=1.0,
        max_delay=100.0,
        max_retry_after=100.0,
        deadline=10.0,
        random=lambda: 0.5,
        clock=fake_time.clock,
        sleep=fake_time.sleep,
    )
    routes = Routes().add("GET", BATCH_PATH, httpx.Response(503))
    client = make_client(routes, retry_policy=policy)

    with pytest.raises(SinchServerError):
        await client.get_batch(BATCH_ID)

    # Waits of 0.5, 1, 2 and 4 s fit in 10 s; the next (8 s) would end at 15.5 s.
    assert fake_time.sleeps == [0.5, 1.0, 2.0, 4.0]
    assert len(routes.requests) == 5


@pytest.mark.asyncio
async def test_a_retry_after_past_the_deadline_gives_up_at_once(
    fake_time: FakeTime, make_client
) -> None:
    policy = RetryPolicy(
        deadline=5.0, max_retry_after=60.0, clock=fake_time.clock, sleep=fake_time.sleep
    )
    routes = Routes().add("GET", BATCH_PATH, httpx.Response(429, headers={"Retry-After": "30"}))
    client = make_client(routes, retry_policy=policy)

    with pytest.raises(SinchRateLimited):
        await client.get_batch(BATCH_ID)

    assert fake_time.sleeps == []


@pytest.mark.asyncio
async def test_observer_sees_in_flight_balance(make_client, observer: RecordingObserver) -> None:
    client = make_client(Routes().add("GET", BATCH_PATH, httpx.Response(200, json=batch_json())))

    await client.get_batch(BATCH_ID)

    assert (observer.in_flight_max, observer.in_flight_now) == (1, 0)
    assert observer.finished == [("get_batch", "ok")]


@pytest.mark.asyncio
async def test_a_failing_observer_cannot_lose_a_send(make_client) -> None:
    class BrokenObserver(RecordingObserver):
        def request_finished(self, *args: object) -> None:
            raise RuntimeError("metrics backend down")

    client = make_client(
        Routes().add("POST", BATCHES_PATH, httpx.Response(201, json=batch_json())),
        observer=BrokenObserver(),
    )

    assert (await client.send_batch(text_batch())).id == BATCH_ID


@pytest.mark.asyncio
async def test_sinch_error_codes_reach_the_observer(make_client, observer) -> None:
    body = {"code": "syntax_invalid_parameter_format", "text": "bad"}
    client = make_client(Routes().add("POST", BATCHES_PATH, httpx.Response(400, json=body)))

    with pytest.raises(SinchRejected):
        await client.send_batch(text_batch())

    assert observer.errors == [("send_batch", "syntax_invalid_parameter_format")]


@pytest.mark.asyncio
async def test_factory_for_api_token_uses_the_region_and_plan() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=batch_json())

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        client = SinchClient.for_api_token(
            http, service_plan_id="myplan", api_token=API_TOKEN, region="eu"
        )
        await client.get_batch(BATCH_ID)

    assert str(seen[0].url) == f"https://eu.sms.api.sinch.com/xms/v1/myplan/batches/{BATCH_ID}"
    assert API_TOKEN not in repr(client)


@pytest.mark.asyncio
async def test_the_client_refuses_a_bad_base_url_or_empty_plan() -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(ValueError, match="base_url"):
            SinchClient(http, base_url="us.sms.api.sinch.com", path_id="p", auth=ApiTokenAuth("t"))
        with pytest.raises(ValueError, match="path_id"):
            SinchClient(http, base_url="https://x", path_id="", auth=ApiTokenAuth("t"))
