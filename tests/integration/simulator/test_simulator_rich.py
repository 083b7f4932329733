"""The simulator takes MMS (mt_media) and binary (mt_binary) batches as Sinch does: region and
destination rules, MMS report kinds and the MMS-only codes, binary part rules."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from smsgateway.simulator import SimulatorConfig
from tests.support.polling import wait_until
from tests.support.sinch_simulator import PLAN_DEFAULT_FROM, RunningSimulator, running_simulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

US = "+15551230001"
AU = "+61412345678"
SE = "+46701234567"
MEDIA = {"url": "https://media.example.com/cat.jpg", "message": "Look", "subject": "Cat"}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shared_sim() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(
        SimulatorConfig.for_tests(default_from=PLAN_DEFAULT_FROM)
    ) as running:
        yield running


@pytest_asyncio.fixture
async def sim(shared_sim: RunningSimulator) -> RunningSimulator:
    (await shared_sim.client.post("/_admin/reset")).raise_for_status()
    return shared_sim


async def final_report(sim: RunningSimulator, batch_id: str, recipient: str) -> dict[str, object]:
    report: dict[str, object] = {}

    async def final() -> bool:
        nonlocal report
        response = await sim.client.get(f"{sim.batch_path(batch_id)}/delivery_report/{recipient}")
        report = response.json() if response.status_code == 200 else {}
        return report.get("status") not in (None, "Queued", "Dispatched")

    await wait_until(final, timeout_s=5, message="a final status")
    return report


async def test_mms_batch_is_stored_with_its_media_body_and_reports_as_mms(
    sim: RunningSimulator,
) -> None:
    response = await sim.client.post(
        sim.batches_path,
        json={"to": [US, AU], "type": "mt_media", "body": MEDIA, "strict_validation": True},
    )
    assert response.status_code == 201, response.text
    batch = response.json()
    assert batch["type"] == "mt_media"
    assert batch["body"] == MEDIA
    assert batch["strict_validation"] is True
    for recipient in (US, AU):
        report = await final_report(sim, batch["id"], recipient)
        assert report["type"] == "recipient_delivery_report_mms"
        assert (report["status"], report["code"]) == ("Delivered", 0)
        assert "encoding" not in report


async def test_mms_to_a_country_sinch_does_not_serve_fails_with_417(sim: RunningSimulator) -> None:
    response = await sim.client.post(
        sim.batches_path, json={"to": [SE], "type": "mt_media", "body": MEDIA}
    )
    assert response.status_code == 201
    report = await final_report(sim, response.json()["id"], SE)
    assert (report["status"], report["code"]) == ("Failed", 417)


async def test_mms_whose_media_cannot_be_fetched_fails_with_418(sim: RunningSimulator) -> None:
    body = {**MEDIA, "url": "https://nowhere.invalid/cat.jpg"}
    response = await sim.client.post(
        sim.batches_path, json={"to": [US], "type": "mt_media", "body": body}
    )
    report = await final_report(sim, response.json()["id"], US)
    assert (report["status"], report["code"]) == ("Failed", 418)


async def test_mms_failure_uses_the_mms_code(sim: RunningSimulator) -> None:
    await sim.client.put("/_admin/outcomes", json={"overrides": {US: "failed"}})
    response = await sim.client.post(
        sim.batches_path, json={"to": [US], "type": "mt_media", "body": MEDIA}
    )
    report = await final_report(sim, response.json()["id"], US)
    assert (report["status"], report["code"]) == ("Failed", 414)


@pytest.mark.parametrize(
    "body",
    [None, "https://media.example.com/a.jpg", {"message": "no url"}, {"url": "ftp://x/a"}],
)
async def test_mms_body_must_be_an_object_with_a_url(sim: RunningSimulator, body: object) -> None:
    response = await sim.client.post(
        sim.batches_path, json={"to": [US], "type": "mt_media", "body": body}
    )
    assert response.status_code == 400
    assert response.json()["code"] in (
        "syntax_constraint_violation",
        "syntax_invalid_parameter_format",
    )


async def test_mms_from_an_account_outside_us_is_refused() -> None:
    config = SimulatorConfig.for_tests(default_from=PLAN_DEFAULT_FROM, region="eu")
    async with running_simulator(config) as sim:
        mms = await sim.client.post(
            sim.batches_path, json={"to": [US], "type": "mt_media", "body": MEDIA}
        )
        text = await sim.client.post(sim.batches_path, json={"to": [US], "body": "x"})
    assert mms.status_code == 403
    assert mms.json()["code"] == "unprovisioned_region"
    assert text.status_code == 201


async def test_binary_batch_is_delivered_with_its_parts(sim: RunningSimulator) -> None:
    # 200 octets with a concatenation UDH (IEI 00): two parts of at most 134.
    payload = "QUFB" * 66 + "QUE="
    response = await sim.client.post(
        sim.batches_path,
        json={"to": [US], "type": "mt_binary", "body": payload, "udh": "050003CC0201"},
    )
    assert response.status_code == 201, response.text
    batch = response.json()
    assert (batch["type"], batch["udh"]) == ("mt_binary", "050003CC0201")
    report = await final_report(sim, batch["id"], US)
    assert report["type"] == "recipient_delivery_report_sms"
    assert (report["status"], report["number_of_message_parts"]) == ("Delivered", 2)


@pytest.mark.parametrize(
    ("body", "udh", "code"),
    [
        ("QUFB" * 47, "0401020304", "syntax_constraint_violation"),  # 141 octets, no concat
        ("not base64", "050003CC0201", "syntax_invalid_parameter_format"),
        ("QUFB", None, "syntax_constraint_violation"),
    ],
)
async def test_binary_that_sinch_refuses(
    sim: RunningSimulator, body: str, udh: str | None, code: str
) -> None:
    request: dict[str, object] = {"to": [US], "type": "mt_binary", "body": body}
    if udh is not None:
        request["udh"] = udh
    response = await sim.client.post(sim.batches_path, json=request)
    assert response.status_code == 400
    assert response.json()["code"] == code
