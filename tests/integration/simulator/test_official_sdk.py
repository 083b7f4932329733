"""The official Sinch SDK for Python (PyPI `sinch`) against `smsgateway simulator` on a socket.

The simulator runs as the real command with its account given only on the command line; the
SDK is pointed at it by its SMS domain setting. The SDK is synchronous (requests), so these
tests are plain sync tests. Where the SDK and the simulator disagree, the simulator is fixed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sinch import SinchClient
from sinch.domains.authentication.exceptions import AuthenticationException
from sinch.domains.sms.api.v1.exceptions import SmsException
from sinch.domains.sms.models.v1.response.recipient_delivery_report import (
    RecipientDeliveryReport,
)

from tests.support.background_loop import BackgroundLoop
from tests.support.live_server import live_server
from tests.support.receiver import WebhookReceiver
from tests.support.simulator_process import simulator_process

PLAN_ID = "sdk-plan-7f3c"
API_TOKEN = "sdk-token-2b9e"
ANN, BOB = "+15551230001", "+15551230002"
SENDER = "+15550001111"


@pytest.fixture(scope="module")
def simulator_url() -> Iterator[str]:
    args = ["--service-plan-id", PLAN_ID, "--api-token", API_TOKEN, "--delivery-delay", "0.2"]
    with simulator_process([*args, "--seed", "1"]) as base_url:
        yield base_url


def sdk_client(base_url: str, *, token: str = API_TOKEN) -> SinchClient:
    client = SinchClient(service_plan_id=PLAN_ID, sms_api_token=token, sms_region="us")
    # The SDK's origin for service-plan calls is this domain formatted with the region.
    client.configuration.sms_domain_with_service_plan_id = base_url
    return client


@pytest.fixture
def sinch(simulator_url: str) -> SinchClient:
    return sdk_client(simulator_url)


def wait_for_final(sinch: SinchClient, batch_id: str, recipient: str) -> RecipientDeliveryReport:
    """Poll the SDK's per-recipient report, with a deadline, until it is final."""
    deadline = time.monotonic() + 10
    while True:
        report = sinch.sms.delivery_reports.get_for_number(batch_id=batch_id, recipient=recipient)
        if report.status not in ("Queued", "Dispatched"):
            return report
        assert time.monotonic() < deadline, f"{recipient} still {report.status} after 10 s"
        time.sleep(0.05)  # a poll interval, not synchronisation: the loop checks the state


def test_send_and_get_round_trip_through_the_sdk_models(sinch: SinchClient) -> None:
    sent = sinch.sms.batches.send_sms(
        to=[ANN, BOB], from_=SENDER, body="Hello from the SDK", client_reference="sdk-1"
    )

    assert len(sent.id) == 26
    assert sent.to == [ANN, BOB]
    assert sent.from_ == SENDER
    assert sent.canceled is False
    assert sent.client_reference == "sdk-1"
    fetched = sinch.sms.batches.get(batch_id=sent.id)
    assert fetched.id == sent.id
    assert fetched.body == "Hello from the SDK"
    assert fetched.created_at == sent.created_at


def test_dry_run_counts_parts_per_recipient(sinch: SinchClient) -> None:
    answer = sinch.sms.batches.dry_run_sms(
        to=[ANN, BOB], from_=SENDER, body="€" * 100, per_recipient=True
    )

    assert answer.number_of_recipients == 2
    assert answer.number_of_messages == 4
    assert answer.per_recipient is not None
    assert {row.recipient for row in answer.per_recipient} == {ANN[1:], BOB[1:]}
    assert {(row.number_of_parts, row.encoding) for row in answer.per_recipient} == {(2, "text")}


def test_cancel_a_scheduled_batch(sinch: SinchClient) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    scheduled = sinch.sms.batches.send_sms(to=[ANN], from_=SENDER, body="later", send_at=later)

    cancelled = sinch.sms.batches.cancel(batch_id=scheduled.id)

    assert cancelled.id == scheduled.id
    assert cancelled.canceled is True
    report = sinch.sms.delivery_reports.get_for_number(batch_id=scheduled.id, recipient=ANN)
    assert (report.status, report.code) == ("Cancelled", 407)


def test_list_batches_pages_through_every_batch(sinch: SinchClient) -> None:
    reference = f"sdk-list-{datetime.now(UTC).timestamp()}"
    sent = {
        sinch.sms.batches.send_sms(
            to=[ANN], from_=SENDER, body=f"n{i}", client_reference=reference
        ).id
        for i in range(3)
    }

    first = sinch.sms.batches.list(page_size=2, client_reference=reference)

    assert len(first.content()) == 2
    assert {batch.id for batch in first.iterator()} == sent


def test_delivery_reports_batch_recipient_and_list(sinch: SinchClient) -> None:
    sent = sinch.sms.batches.send_sms(
        to=[ANN], from_=SENDER, body="report me", client_reference="sdk-dr"
    )

    final = wait_for_final(sinch, sent.id, ANN)

    assert (final.status, final.code) == ("Delivered", 0)
    assert final.batch_id == sent.id
    assert final.applied_originator == SENDER
    summary = sinch.sms.delivery_reports.get(batch_id=sent.id, report_type="full")
    assert summary.batch_id == sent.id
    assert summary.client_reference == "sdk-dr"
    assert [(s.status, s.code, s.count, s.recipients) for s in summary.statuses] == [
        ("Delivered", 0, 1, [ANN])
    ]
    listed = sinch.sms.delivery_reports.list(client_reference="sdk-dr")
    assert [(r.batch_id, r.recipient, r.status) for r in listed.content()] == [
        (sent.id, ANN, "Delivered")
    ]


def test_no_sender_and_no_default_originator_ends_with_410(sinch: SinchClient) -> None:
    # The SDK asks for `from_` but the API makes it optional; None leaves it out of the JSON.
    sent = sinch.sms.batches.send_sms(to=[ANN], from_=None, body="who from?")

    assert sent.from_ is None
    final = wait_for_final(sinch, sent.id, ANN)
    assert (final.status, final.code) == ("Aborted", 410)


def test_a_wrong_token_is_401(simulator_url: str) -> None:
    wrong = sdk_client(simulator_url, token="not-the-token")

    with pytest.raises(SmsException) as raised:
        wrong.sms.batches.send_sms(to=[ANN], from_=SENDER, body="x")

    assert raised.value.response_status_code == 401


def test_the_sdk_validates_and_parses_the_simulators_signed_callbacks() -> None:
    secret = "sdk-signing-secret"
    receiver = WebhookReceiver()
    with BackgroundLoop() as background:
        hook_url = background.enter(live_server(receiver)) + "/sinch"
        args = [
            "--service-plan-id", PLAN_ID, "--api-token", API_TOKEN, "--delivery-delay", "0.05",
            "--callback-url", hook_url, "--signing-secret", secret, "--default-from", SENDER,
        ]  # fmt: skip
        with simulator_process(args) as base_url:
            forced = httpx.put(
                f"{base_url}/_admin/outcomes", json={"overrides": {ANN: "delivered"}}, timeout=5
            )
            forced.raise_for_status()
            sinch = sdk_client(base_url)
            sent = sinch.sms.batches.send_sms(
                to=[ANN], from_=None, body="signed", delivery_report="per_recipient_final"
            )
            injected = httpx.post(
                f"{base_url}/_admin/inbounds",
                json={"from": BOB, "to": SENDER, "body": "STOP"},
                timeout=5,
            )
            received = background.run(receiver.wait_for(2, path="/sinch"))

    assert injected.status_code == 202
    events = sinch.sms.sinch_events(secret)
    wrong = sinch.sms.sinch_events("another-secret")
    parsed = []
    for request in received:
        assert events.validate_authentication_header(request.headers, request.body)
        assert not wrong.validate_authentication_header(request.headers, request.body)
        parsed.append(events.parse_event(request.body, request.headers))
    by_type = {type(event).__name__: event for event in parsed}
    report = by_type["RecipientDeliveryReport"]
    # Like Sinch, the simulator sometimes writes a callback's recipient without its `+`.
    assert (report.batch_id, report.recipient.removeprefix("+"), report.status) == (
        sent.id,
        ANN.removeprefix("+"),
        "Delivered",
    )
    assert report.applied_originator == SENDER
    inbound = next(event for name, event in by_type.items() if name != "RecipientDeliveryReport")
    assert (inbound.from_, inbound.body) == (BOB, "STOP")


def test_the_sdk_authenticates_with_oauth2_project_credentials() -> None:
    args = ["--project-id", "proj-sdk", "--key-id", "key-sdk", "--key-secret", "secret-sdk"]
    with simulator_process([*args, "--default-from", SENDER]) as base_url:
        sinch = SinchClient(
            project_id="proj-sdk", key_id="key-sdk", key_secret="secret-sdk", sms_region="us"
        )
        # Project calls go to sms_domain, tokens come from auth_origin: both the simulator.
        sinch.configuration.auth_origin = base_url
        sinch.configuration.sms_domain = base_url
        sent = sinch.sms.batches.send_sms(to=[ANN], from_=None, body="oauth")
        fetched = sinch.sms.batches.get(batch_id=sent.id)
        wrong = SinchClient(
            project_id="proj-sdk", key_id="key-sdk", key_secret="not-it", sms_region="us"
        )
        wrong.configuration.auth_origin = base_url
        wrong.configuration.sms_domain = base_url
        with pytest.raises(AuthenticationException) as refused:
            wrong.sms.batches.get(batch_id=sent.id)

    assert (fetched.id, fetched.from_) == (sent.id, SENDER)
    assert refused.value.response_status_code == 401
