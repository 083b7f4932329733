"""start_date / end_date and send_at in Sinch's form, taken by the simulator over sockets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from smsgateway.sinch import SinchClient
from smsgateway.sinch.models import SendBatchRequest
from tests.integration.sinch.sinch_live import new_reference

pytestmark = pytest.mark.asyncio(loop_scope="session")

ANN = "+15551230001"


async def test_the_date_window_filters_batches(client: SinchClient) -> None:
    reference = new_reference()
    before = datetime.now(UTC) - timedelta(seconds=1)
    sent = await client.send_batch(
        SendBatchRequest(
            to=[ANN],
            body="later",
            client_reference=reference,
            send_at=datetime.now(UTC) + timedelta(hours=1, microseconds=123456),
        )
    )
    after = datetime.now(UTC) + timedelta(seconds=1)

    inside = await client.list_batches(
        client_reference=reference, start_date=before, end_date=after
    )
    too_late = await client.list_batches(client_reference=reference, start_date=after)
    too_early = await client.list_batches(client_reference=reference, end_date=before)
    found = await client.find_batch(reference, start_date=before)

    assert [batch.id for batch in inside.batches] == [sent.id]
    assert too_late.batches == too_early.batches == []
    assert found is not None
    assert found.id == sent.id
    assert sent.send_at is not None
    assert sent.send_at.microsecond % 1000 == 0  # sent to the millisecond, stored as sent
