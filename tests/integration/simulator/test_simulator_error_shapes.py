"""What a Sinch client sees off the happy path: unknown routes, wrong methods and content
types keep Sinch's `{"code", "text"}` shape; a batch with no originator ends with 410."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from smsgateway.simulator import SimulatorConfig
from tests.support.polling import wait_until
from tests.support.sinch_simulator import RunningSimulator, running_simulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

ANN, BOB = "+15551230001", "+15551230002"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sim() -> AsyncIterator[RunningSimulator]:
    # No default originator: the plan as `smsgateway simulator` starts it with no flags.
    async with running_simulator(SimulatorConfig.for_tests()) as running:
        yield running


@pytest.mark.parametrize(
    "path",
    ["/nowhere", "/xms/v1/simulator-plan/groups", "/xms/v2/simulator-plan/batches"],
)
async def test_an_unknown_route_is_a_sinch_shaped_404(sim: RunningSimulator, path: str) -> None:
    response = await sim.client.get(path)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"code": "not_found", "text": f"No such resource: {path}."}


async def test_a_wrong_method_is_a_sinch_shaped_405_with_allow(sim: RunningSimulator) -> None:
    response = await sim.client.patch(sim.batches_path, json={})

    assert response.status_code == 405
    assert response.headers.get_list("allow") == ["GET, POST"]
    assert response.json()["code"] == "method_not_allowed"
    assert "PATCH" in response.json()["text"]


@pytest.mark.parametrize(
    ("headers", "described"),
    [
        ({"content-type": "text/plain"}, "'text/plain'"),
        ({"content-type": "application/x-www-form-urlencoded"}, "'application/x-www-form"),
        ({}, "none was given"),
    ],
)
@pytest.mark.parametrize("suffix", ["", "/dry_run"])
async def test_a_body_not_declared_json_is_415(
    sim: RunningSimulator, headers: dict[str, str], described: str, suffix: str
) -> None:
    body = b'{"to": ["+15551230001"], "from": "+15550001111", "body": "x"}'

    response = await sim.client.post(sim.batches_path + suffix, content=body, headers=headers)

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert described in response.json()["text"]
    assert await sim.batch_count("x") == 0


async def test_json_with_a_charset_is_accepted(sim: RunningSimulator) -> None:
    response = await sim.client.post(
        sim.batches_path,
        content=b'{"to": ["+15551230001"], "from": "+15550001111", "body": "x"}',
        headers={"content-type": "Application/JSON; charset=utf-8"},
    )

    assert response.status_code == 201


async def test_no_from_and_no_default_originator_aborts_each_message_with_410(
    sim: RunningSimulator,
) -> None:
    sent = await sim.client.post(
        sim.batches_path, json={"to": [ANN, BOB], "body": "who from?", "client_reference": "n"}
    )

    assert sent.status_code == 201
    batch = sent.json()
    assert "from" not in batch
    report_path = sim.batch_path(batch["id"]) + "/delivery_report"

    async def aborted() -> bool:
        report = (await sim.client.get(report_path, params={"type": "full"})).json()
        return bool(report["statuses"]) and report["statuses"][0]["code"] == 410

    await wait_until(aborted, timeout_s=5, message="the batch's report says 410")
    full = (await sim.client.get(report_path, params={"type": "full"})).json()
    assert full["statuses"] == [
        {"code": 410, "status": "Aborted", "count": 2, "recipients": [ANN, BOB]}
    ]
    one = (await sim.client.get(report_path + "/" + ANN)).json()
    assert (one["status"], one["code"]) == ("Aborted", 410)
    assert "applied_originator" not in one


async def test_delivery_reports_list_pages_final_reports(sim: RunningSimulator) -> None:
    (await sim.client.post("/_admin/reset")).raise_for_status()
    for n in range(3):
        response = await sim.client.post(
            sim.batches_path,
            json={"to": [ANN], "from": "+15550001111", "body": "x", "client_reference": f"l{n}"},
        )
        assert response.status_code == 201
    path = f"/xms/v1/{sim.plan_id}/delivery_reports"

    async def all_final() -> bool:
        return bool((await sim.client.get(path)).json()["count"] == 3)

    await wait_until(all_final, timeout_s=5, message="three final reports")
    page = (await sim.client.get(path, params={"page_size": 2, "page": 1})).json()
    one = (await sim.client.get(path, params={"client_reference": "l1"})).json()
    failed = (await sim.client.get(path, params={"status": "Failed"})).json()

    assert (page["count"], page["page"], page["page_size"]) == (3, 1, 1)
    assert page["delivery_reports"][0]["client_reference"] == "l0"
    assert [r["client_reference"] for r in one["delivery_reports"]] == ["l1"]
    assert one["delivery_reports"][0]["type"] == "recipient_delivery_report_sms"
    assert (failed["count"], failed["page_size"], failed["delivery_reports"]) == (0, 0, [])
