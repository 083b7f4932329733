"""Callbacks from the simulator to a receiver on another live socket: shapes, retries, signing."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
import pytest_asyncio

from smsgateway.simulator import Outcome, SimulatorConfig
from tests.support.live_server import live_server
from tests.support.polling import wait_until
from tests.support.receiver import ReceivedRequest, WebhookReceiver
from tests.support.sinch_simulator import PLAN_DEFAULT_FROM, RunningSimulator, running_simulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

ANN, BOB = "+15551230001", "+15551230002"


@dataclass(frozen=True, slots=True)
class Harness:
    sim: RunningSimulator
    receiver: WebhookReceiver
    receiver_url: str

    async def send(self, path: str = "/dlr", **fields: object) -> dict[str, object]:
        request: dict[str, object] = {
            "to": [ANN, BOB],
            "body": "Hello",
            "callback_url": self.receiver_url + path,
        }
        request.update(fields)
        response = await self.sim.client.post(self.sim.batches_path, json=request)
        assert response.status_code == 201, response.text
        batch: dict[str, object] = response.json()
        return batch


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[tuple[WebhookReceiver, str]]:
    hook = WebhookReceiver()
    async with live_server(hook) as url:
        yield hook, url


def payloads(requests: list[ReceivedRequest]) -> list[dict[str, object]]:
    return [request.json() for request in requests]


async def test_summary_report_is_sent_once_when_every_recipient_is_final(
    receiver: tuple[WebhookReceiver, str],
) -> None:
    hook, url = receiver
    config = SimulatorConfig.for_tests(
        default_from=PLAN_DEFAULT_FROM, outcome_overrides={BOB: Outcome.FAILED}
    )
    async with running_simulator(config) as sim:
        batch = await Harness(sim, hook, url).send(delivery_report="summary", client_reference="s1")
        [report] = payloads(await hook.wait_for(1))

    assert report == {
        "type": "delivery_report_sms",
        "batch_id": batch["id"],
        "total_message_count": 2,
        "client_reference": "s1",
        "statuses": [
            {"code": 0, "status": "Delivered", "count": 1},
            {"code": 402, "status": "Failed", "count": 1},
        ],
    }


async def test_full_report_lists_the_recipients(receiver: tuple[WebhookReceiver, str]) -> None:
    hook, url = receiver
    async with running_simulator(SimulatorConfig.for_tests(default_from=PLAN_DEFAULT_FROM)) as sim:
        await Harness(sim, hook, url).send(delivery_report="full")
        [report] = payloads(await hook.wait_for(1))

    assert report["statuses"] == [
        {"code": 0, "status": "Delivered", "count": 2, "recipients": [ANN, BOB]}
    ]
    assert "client_reference" not in report


async def test_per_recipient_reports_every_status_change(
    receiver: tuple[WebhookReceiver, str],
) -> None:
    hook, url = receiver
    config = SimulatorConfig.for_tests(default_from=PLAN_DEFAULT_FROM)
    async with running_simulator(config) as sim:
        batch = await Harness(sim, hook, url).send(
            to=[ANN], body="€ price", delivery_report="per_recipient", client_reference="p1"
        )
        reports = payloads(await hook.wait_for(3))

    assert [(r["status"], r["code"]) for r in reports] == [
        ("Queued", 400),
        ("Dispatched", 401),
        ("Delivered", 0),
    ]
    final = reports[2]
    assert final["type"] == "recipient_delivery_report_sms"
    assert final["batch_id"] == batch["id"]
    assert final["recipient"] == ANN
    assert final["client_reference"] == "p1"
    assert final["applied_originator"] == "+15550009999"
    assert final["number_of_message_parts"] == 1
    assert final["encoding"] == "GSM"
    assert final["operator"] == "310260"
    for field in ("at", "operator_status_at"):
        assert str(final[field]).endswith("Z")
    assert "operator_status_at" not in reports[0]


async def test_per_recipient_final_reports_only_the_end(
    receiver: tuple[WebhookReceiver, str],
) -> None:
    hook, url = receiver
    config = SimulatorConfig.for_tests(
        default_from=PLAN_DEFAULT_FROM, outcome_overrides={BOB: Outcome.EXPIRED}
    )
    async with running_simulator(config) as sim:
        harness = Harness(sim, hook, url)
        await harness.send(body="ж", delivery_report="per_recipient_final")
        reports = payloads(await hook.wait_for(2))
        # A later batch's report arriving proves the first one sent nothing more.
        await harness.send(path="/marker", to=[ANN], delivery_report="per_recipient_final")
        await hook.wait_for(1, path="/marker")

    assert sorted((r["recipient"], r["status"], r["code"]) for r in reports) == [
        (ANN, "Delivered", 0),
        (BOB, "Expired", 406),
    ]
    assert {r["encoding"] for r in reports} == {"UNICODE"}
    assert len(hook.on("/dlr")) == 2


async def test_delivery_report_none_sends_nothing(receiver: tuple[WebhookReceiver, str]) -> None:
    hook, url = receiver
    async with running_simulator(SimulatorConfig.for_tests(default_from=PLAN_DEFAULT_FROM)) as sim:
        harness = Harness(sim, hook, url)
        await harness.send(delivery_report="none")
        await harness.send(path="/marker", delivery_report="summary")
        await hook.wait_for(1, path="/marker")

    assert hook.on("/dlr") == []


async def test_recipients_may_lose_their_plus(receiver: tuple[WebhookReceiver, str]) -> None:
    hook, url = receiver
    config = SimulatorConfig.for_tests(
        default_from=PLAN_DEFAULT_FROM, recipient_without_plus_probability=1.0
    )
    async with running_simulator(config) as sim:
        harness = Harness(sim, hook, url)
        await harness.send(delivery_report="per_recipient_final")
        await harness.send(path="/full", delivery_report="full")
        finals = payloads(await hook.wait_for(2, path="/dlr"))
        [full] = payloads(await hook.wait_for(1, path="/full"))

    assert sorted(str(r["recipient"]) for r in finals) == ["15551230001", "15551230002"]
    assert full["statuses"] == [
        {"code": 0, "status": "Delivered", "count": 2, "recipients": ["15551230001", "15551230002"]}
    ]


async def test_send_at_holds_callbacks_back(receiver: tuple[WebhookReceiver, str]) -> None:
    hook, url = receiver
    send_at = datetime.now(UTC) + timedelta(seconds=0.3)
    async with running_simulator(SimulatorConfig.for_tests(default_from=PLAN_DEFAULT_FROM)) as sim:
        await Harness(sim, hook, url).send(
            to=[ANN], delivery_report="per_recipient", send_at=send_at.isoformat()
        )
        [queued, *_] = await hook.wait_for(3)

    assert queued.received_at >= send_at.timestamp()
    assert queued.json()["at"] == send_at.strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{send_at.microsecond // 1000:03d}Z"
    )


async def test_cancel_reports_cancelled_instead(receiver: tuple[WebhookReceiver, str]) -> None:
    hook, url = receiver
    send_at = datetime.now(UTC) + timedelta(seconds=60)
    async with running_simulator(SimulatorConfig.for_tests(default_from=PLAN_DEFAULT_FROM)) as sim:
        batch = await Harness(sim, hook, url).send(
            to=[ANN], delivery_report="per_recipient", send_at=send_at.isoformat()
        )
        await sim.client.delete(sim.batch_path(str(batch["id"])))
        [report] = payloads(await hook.wait_for(1))

    assert (report["status"], report["code"]) == ("Cancelled", 407)


async def test_5xx_and_429_are_retried_with_doubling_delays(
    receiver: tuple[WebhookReceiver, str],
) -> None:
    hook, url = receiver
    hook.script("/dlr", 500, 429, 503)
    config = SimulatorConfig.for_tests(
        default_from=PLAN_DEFAULT_FROM, callback_retry_base_s=0.05, callback_max_retries=5
    )
    async with running_simulator(config) as sim:
        await Harness(sim, hook, url).send(to=[ANN], delivery_report="summary")
        requests = await hook.wait_for(4)

        async def delivered() -> bool:
            return any(a["outcome"] == "delivered" for a in await sim.callback_attempts())

        await wait_until(delivered)
        attempts = await sim.callback_attempts()

    assert [r.answered for r in requests] == [500, 429, 503, 200]
    assert len({r.body for r in requests}) == 1
    gaps = [later.received_at - earlier.received_at for earlier, later in pairwise(requests)]
    for gap, expected in zip(gaps, (0.05, 0.10, 0.20), strict=True):
        assert gap >= expected * 0.9
    assert [(a["attempt"], a["http_status"], a["outcome"]) for a in attempts] == [
        (1, 500, "retrying"),
        (2, 429, "retrying"),
        (3, 503, "retrying"),
        (4, 200, "delivered"),
    ]


async def test_other_4xx_are_not_retried(receiver: tuple[WebhookReceiver, str]) -> None:
    hook, url = receiver
    hook.script("/dlr", 400)
    async with running_simulator(SimulatorConfig.for_tests(default_from=PLAN_DEFAULT_FROM)) as sim:
        harness = Harness(sim, hook, url)
        await harness.send(to=[ANN], delivery_report="summary")
        await hook.wait_for(1, path="/dlr")
        # A retry would come after 0.05 s; a later batch's callback at 0.25 s proves none came.
        await harness.send(path="/marker", to=[ANN], delivery_report="summary", send_at=_in(0.25))
        await hook.wait_for(1, path="/marker")

        async def both_recorded() -> bool:
            return len(await sim.callback_attempts()) == 2

        await wait_until(both_recorded)
        attempts = await sim.callback_attempts()

    assert len(hook.on("/dlr")) == 1
    assert [(a["http_status"], a["outcome"]) for a in attempts] == [
        (400, "rejected"),
        (200, "delivered"),
    ]


async def test_retries_stop_after_the_last_one(receiver: tuple[WebhookReceiver, str]) -> None:
    hook, url = receiver
    hook.script("/dlr", 503, 503, 503)
    config = SimulatorConfig.for_tests(
        default_from=PLAN_DEFAULT_FROM, callback_retry_base_s=0.02, callback_max_retries=2
    )
    async with running_simulator(config) as sim:
        await Harness(sim, hook, url).send(to=[ANN], delivery_report="summary")

        async def gave_up() -> bool:
            return any(a["outcome"] == "gave_up" for a in await sim.callback_attempts())

        await wait_until(gave_up)
        attempts = await sim.callback_attempts()

    assert [a["outcome"] for a in attempts] == ["retrying", "retrying", "gave_up"]
    assert len(hook.on("/dlr")) == 3


async def test_unreachable_callback_urls_are_retried(receiver: tuple[WebhookReceiver, str]) -> None:
    hook, _ = receiver
    config = SimulatorConfig.for_tests(
        default_from=PLAN_DEFAULT_FROM, callback_retry_base_s=0.01, callback_max_retries=1
    )
    async with running_simulator(config) as sim:
        harness = Harness(sim, hook, "http://127.0.0.1:1")
        await harness.send(to=[ANN], delivery_report="summary")

        async def gave_up() -> bool:
            return any(a["outcome"] == "gave_up" for a in await sim.callback_attempts())

        await wait_until(gave_up)
        attempts = await sim.callback_attempts()

    assert [(a["http_status"], a["outcome"]) for a in attempts] == [
        (None, "retrying"),
        (None, "gave_up"),
    ]
    assert all(str(a["error"]).startswith("ConnectError") for a in attempts)


async def test_signed_callbacks_go_to_the_plan_url_and_verify(
    receiver: tuple[WebhookReceiver, str],
) -> None:
    hook, url = receiver
    config = SimulatorConfig.for_tests(
        default_from=PLAN_DEFAULT_FROM,
        signing_secret="s3cret",
        default_callback_url=url + "/signed",
    )
    async with running_simulator(config) as sim:
        await Harness(sim, hook, url).send(to=[ANN], delivery_report="per_recipient")
        requests = await hook.wait_for(3, path="/signed")

    assert hook.on("/dlr") == []
    nonces = set()
    for request in requests:
        headers = request.headers
        assert headers["x-sinch-webhook-signature-algorithm"] == "HmacSHA256"
        nonce = headers["x-sinch-webhook-signature-nonce"]
        timestamp = headers["x-sinch-webhook-signature-timestamp"]
        message = request.body + b"." + nonce.encode() + b"." + timestamp.encode()
        expected = base64.b64encode(hmac.new(b"s3cret", message, hashlib.sha256).digest())
        assert headers["x-sinch-webhook-signature"] == expected.decode()
        nonces.add(nonce)
    assert len(nonces) == 3


async def _final_outcomes(config: SimulatorConfig, reference: str) -> dict[str, str]:
    recipients = [f"+1555123{n:04d}" for n in range(60)]
    async with running_simulator(config) as sim:
        created = await sim.client.post(
            sim.batches_path,
            json={"to": recipients, "body": "x", "client_reference": reference},
        )
        path = sim.batch_path(created.json()["id"]) + "/delivery_report"

        async def final() -> bool:
            report = (await sim.client.get(path)).json()
            return all(s["code"] not in (400, 401) for s in report["statuses"])

        await wait_until(final)
        report = (await sim.client.get(path, params={"type": "full"})).json()
    return {r: s["status"] for s in report["statuses"] for r in s["recipients"]}


async def test_seeded_outcomes_repeat_for_the_same_client_reference() -> None:
    mix = {Outcome.DELIVERED: 0.5, Outcome.FAILED: 0.3, Outcome.REJECTED: 0.2}
    seeded = SimulatorConfig.for_tests(default_from=PLAN_DEFAULT_FROM, seed=42, outcome_mix=mix)

    first = await _final_outcomes(seeded, "same-ref")
    again = await _final_outcomes(seeded, "same-ref")
    other_seed = await _final_outcomes(seeded.model_copy(update={"seed": 43}), "same-ref")

    assert first == again
    assert set(first.values()) == {"Delivered", "Failed", "Rejected"}
    assert first != other_seed


async def test_duplicates_and_out_of_order_delivery(receiver: tuple[WebhookReceiver, str]) -> None:
    hook, url = receiver
    config = SimulatorConfig.for_tests(
        default_from=PLAN_DEFAULT_FROM,
        delivery_delay_s=0.1,
        duplicate_probability=1.0,
        out_of_order_probability=1.0,
    )
    async with running_simulator(config) as sim:
        await Harness(sim, hook, url).send(to=[ANN], delivery_report="per_recipient")
        reports = payloads(await hook.wait_for(6))

    statuses = [str(r["status"]) for r in reports]
    assert sorted(statuses) == sorted(["Queued", "Dispatched", "Delivered"] * 2)
    assert statuses.index("Delivered") < statuses.index("Dispatched") < statuses.index("Queued")


async def test_injected_inbound_reaches_the_inbound_url(
    receiver: tuple[WebhookReceiver, str],
) -> None:
    hook, url = receiver
    config = SimulatorConfig.for_tests(default_from=PLAN_DEFAULT_FROM, inbound_url=url + "/mo")
    async with running_simulator(config) as sim:
        injected = await sim.client.post(
            "/_admin/inbounds", json={"from": ANN, "to": "+15550009999", "body": "STOP"}
        )
        [request] = await hook.wait_for(1, path="/mo")
        listed = (await sim.client.get(f"/xms/v1/{sim.plan_id}/inbounds")).json()
        inbound_id = injected.json()["inbound"]["id"]
        one = await sim.client.get(f"/xms/v1/{sim.plan_id}/inbounds/{inbound_id}")

    mo = request.json()
    assert injected.status_code == 202
    assert mo["type"] == "mo_text"
    assert (mo["from"], mo["to"], mo["body"]) == (ANN, "+15550009999", "STOP")
    assert mo["id"] == inbound_id
    assert {"received_at", "operator_id"} <= set(mo)
    assert listed["count"] == 1
    assert listed["inbounds"] == [mo]
    assert one.json() == mo


def _in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()
