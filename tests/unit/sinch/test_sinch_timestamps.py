"""Timestamps we send Sinch are in its documented form, YYYY-MM-DDThh:mm:ss.SSSZ (UTC, ms, Z)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st

from smsgateway.sinch.auth import ApiTokenAuth
from smsgateway.sinch.client import SinchClient
from smsgateway.sinch.models import SendBatchRequest, sinch_timestamp, to_wire
from tests.unit.sinch.fakes import API_TOKEN, BASE_URL, BATCHES_PATH, PLAN_ID, batch_json, page_json

SINCH_FORM = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"
CET = timezone(timedelta(hours=1))


@pytest.mark.asyncio
async def test_list_batches_sends_start_and_end_date_in_sinchs_form() -> None:
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as sinch:
        route = sinch.get(BATCHES_PATH).respond(200, json=page_json(batch_json()))
        async with httpx.AsyncClient() as http:
            client = SinchClient(
                http, base_url=BASE_URL, path_id=PLAN_ID, auth=ApiTokenAuth(API_TOKEN)
            )
            await client.list_batches(
                page_size=1,
                start_date=datetime(2026, 12, 3, 11, 4, 5, 678901, tzinfo=CET),
                end_date=datetime(2026, 12, 3, 10, 30, tzinfo=UTC),
            )
    query = route.calls.last.request.url.query.decode()
    assert query == (
        "page=0&page_size=1"
        "&start_date=2026-12-03T10%3A04%3A05.678Z&end_date=2026-12-03T10%3A30%3A00.000Z"
    )


@pytest.mark.asyncio
async def test_find_batch_sends_its_start_date_in_sinchs_form() -> None:
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as sinch:
        route = sinch.get(BATCHES_PATH).respond(200, json=page_json())
        async with httpx.AsyncClient() as http:
            client = SinchClient(
                http, base_url=BASE_URL, path_id=PLAN_ID, auth=ApiTokenAuth(API_TOKEN)
            )
            found = await client.find_batch("ref-1", start_date=datetime(2026, 12, 1, tzinfo=UTC))
    assert found is None
    params = route.calls.last.request.url.params
    assert (params["client_reference"], params["start_date"]) == (
        "ref-1",
        "2026-12-01T00:00:00.000Z",
    )


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sinch_timestamp(datetime(2026, 12, 3, 10, 0))


def test_send_at_and_expire_at_go_in_the_same_form() -> None:
    wire = to_wire(
        SendBatchRequest(
            to=["+46701234567"],
            body="hi",
            send_at=datetime(2026, 12, 3, 10, 0, 0, 123456, tzinfo=UTC),
            expire_at=datetime(2026, 12, 3, 13, 0, tzinfo=timezone(timedelta(hours=2))),
        )
    )
    assert (wire["send_at"], wire["expire_at"]) == (
        "2026-12-03T10:00:00.123Z",
        "2026-12-03T11:00:00.000Z",
    )


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(9998, 12, 31),
        timezones=st.sampled_from([UTC, CET, timezone(timedelta(hours=-9, minutes=-30))]),
    )
)
def test_every_aware_moment_is_written_in_utc_to_the_millisecond(moment: datetime) -> None:
    text = sinch_timestamp(moment)
    assert re.fullmatch(SINCH_FORM, text)
    parsed = datetime.fromisoformat(text)
    assert timedelta(0) <= moment - parsed < timedelta(milliseconds=1)
