"""End-to-end timing: submitted → first report → final status, per recipient, in histograms."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import REGISTRY

from tests.integration.webhooks.harness import (
    post_report,
    recipient_report,
    record_batch,
    send_message,
)

pytestmark = pytest.mark.asyncio

SE = "+46701234567"
US = "+12015550123"
BATCH = "01FC66621XXXXX119Z8PMV1TIME"


def count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(f"{name}_count", labels) or 0.0


async def test_first_report_and_final_status_are_timed_once_per_recipient(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    first_before = count("smsgw_submitted_to_first_report_seconds")
    delivered_before = count("smsgw_submitted_to_final_seconds", status="delivered")
    failed_before = count("smsgw_submitted_to_final_seconds", status="failed")
    message_id = await send_message(gateway, (SE, US), delivery_report="per_recipient")
    await record_batch(database_url, message_id, BATCH)

    steps = [
        (SE, "Queued", 400, "2026-11-26T10:02:40.100Z"),
        (SE, "Dispatched", 401, "2026-11-26T10:02:41.100Z"),
        (SE, "Delivered", 0, "2026-11-26T10:02:42.148Z"),
        (SE, "Delivered", 0, "2026-11-26T10:02:42.148Z"),  # a duplicate: not timed again
        (US, "Failed", 402, "2026-11-26T10:02:43.000Z"),
    ]
    for recipient, status, code, at in steps:
        report = recipient_report(BATCH, recipient, status, code, at, client_reference=message_id)
        assert (await post_report(gateway, report)).status_code == 200

    # One first report per recipient (SE's Queued, US's Failed), one final status each.
    assert count("smsgw_submitted_to_first_report_seconds") - first_before == 2
    assert count("smsgw_submitted_to_final_seconds", status="delivered") - delivered_before == 1
    assert count("smsgw_submitted_to_final_seconds", status="failed") - failed_before == 1
