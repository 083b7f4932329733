"""Wire models accept fields they don't know and refuse malformed ones they do."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from smsgateway.sinch.models import (
    Batch,
    BatchDeliveryReport,
    BatchPage,
    DeliveryReportType,
    DeliveryStatus,
    DryRunResult,
    MoBinary,
    MoText,
    RecipientDeliveryReport,
    SendBatchRequest,
    parse_delivery_report,
    parse_inbound_message,
    to_wire,
)
from tests.unit.sinch.fakes import batch_json

BATCH_REPORT = {
    "type": "delivery_report_sms",
    "batch_id": "01FC66621XXXXX119Z8PMV1QPQ",
    "total_message_count": 2,
    "client_reference": "msg_123",
    "statuses": [
        {"code": 0, "status": "Delivered", "count": 1, "recipients": ["+15551230001"]},
        {"code": 402, "status": "Failed", "count": 1, "recipients": ["+15551230002"]},
    ],
}
RECIPIENT_REPORT = {
    "type": "recipient_delivery_report_sms",
    "batch_id": "01FC66621XXXXX119Z8PMV1QPQ",
    "recipient": "+15551230001",
    "code": 0,
    "status": "Delivered",
    "at": "2026-11-26T10:02:42.148Z",
    "operator_status_at": "2026-11-26T10:02:00Z",
    "client_reference": "msg_123",
    "applied_originator": "+15550009999",
    "number_of_message_parts": 1,
    "encoding": "GSM",
    "operator": "310260",
}
MO_TEXT = {
    "type": "mo_text",
    "id": "01FC66621VHDBN119Z8PMV1QPU",
    "from": "+15551230001",
    "to": "+15550009999",
    "body": "STOP",
    "received_at": "2026-11-26T10:05:00.000Z",
    "operator_id": "310260",
    "sent_at": "2026-11-26T10:04:59.000Z",
    "client_reference": "msg_123",
}


def test_send_request_serialises_with_wire_names_and_no_nulls() -> None:
    request = SendBatchRequest(
        to=["+15551230001"],
        from_="+15550009999",
        body="Hi ${name}",
        delivery_report=DeliveryReportType.PER_RECIPIENT,
        send_at=datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
        client_reference="msg_123",
        parameters={"name": {"+15551230001": "Ann", "default": "there"}},
        max_number_of_message_parts=3,
    )

    assert to_wire(request) == {
        "type": "mt_text",
        "to": ["+15551230001"],
        "from": "+15550009999",
        "body": "Hi ${name}",
        "delivery_report": "per_recipient",
        "send_at": "2026-11-26T10:00:00.000Z",
        "client_reference": "msg_123",
        "parameters": {"name": {"+15551230001": "Ann", "default": "there"}},
        "max_number_of_message_parts": 3,
    }


def test_send_request_accepts_the_wire_name_from_and_unknown_fields() -> None:
    request = SendBatchRequest.model_validate(
        {"to": ["+15551230001"], "from": "ACME", "body": "x", "future_option": 1}
    )

    assert request.from_ == "ACME"
    assert to_wire(request)["future_option"] == 1


@pytest.mark.parametrize(
    "change",
    [
        {"to": []},
        {"to": ["+1555"] * 1001},
        {"to": [""]},
        {"to": "+15551230001"},
        {"body": "x" * 2001},
        {"body": None},
        {"delivery_report": "sometimes"},
        {"send_at": "2026-11-26T10:00:00"},  # naive: which zone would Sinch assume?
        {"send_at": "tomorrow"},
        {"client_reference": "r" * 2049},
        {"callback_url": "https://x/" + "a" * 2048},
        {"max_number_of_message_parts": 0},
        {"parameters": {"name": "Ann"}},
        {"type": "mt_binary"},
    ],
)
def test_send_request_refuses_malformed_fields(change: dict[str, Any]) -> None:
    raw: dict[str, Any] = {"to": ["+15551230001"], "body": "hello"}
    raw.update(change)

    with pytest.raises(ValidationError):
        SendBatchRequest.model_validate(raw)


def test_send_request_takes_the_documented_limits() -> None:
    request = SendBatchRequest(
        to=["+15551230001"] * 1000, body="x" * 2000, client_reference="r" * 2048
    )

    assert len(request.to) == 1000


def test_batch_keeps_unknown_fields() -> None:
    batch = Batch.model_validate(batch_json())

    assert batch.id == "01FC66621XXXXX119Z8PMV1QPQ"
    assert batch.from_ == "+15550009999"
    assert batch.model_extra == {"some_future_field": {"nested": True}}
    assert batch.created_at == datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "change",
    [
        {"id": None},
        {"id": ""},
        {"to": "+15551230001"},
        {"canceled": "maybe"},
        {"created_at": "yesterday"},
    ],
)
def test_batch_refuses_malformed_fields(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Batch.model_validate(batch_json(**change))


def test_batch_refuses_a_missing_id() -> None:
    raw = batch_json()
    del raw["id"]

    with pytest.raises(ValidationError):
        Batch.model_validate(raw)


def test_batch_page() -> None:
    page = BatchPage.model_validate(
        {"count": 1, "page": 0, "page_size": 30, "batches": [batch_json()], "extra": "x"}
    )

    assert page.batches[0].client_reference == "msg_123"
    with pytest.raises(ValidationError):
        BatchPage.model_validate({"count": -1, "page": 0, "page_size": 30, "batches": []})


def test_dry_run_result() -> None:
    result = DryRunResult.model_validate(
        {
            "number_of_recipients": 1,
            "number_of_messages": 2,
            "per_recipient": [
                {"recipient": "12017777777", "number_of_parts": 2, "body": "x", "encoding": "text"}
            ],
        }
    )

    assert result.per_recipient[0].encoding == "text"
    assert (
        DryRunResult.model_validate(
            {"number_of_recipients": 1, "number_of_messages": 1}
        ).per_recipient
        == []
    )
    with pytest.raises(ValidationError):
        DryRunResult.model_validate({"number_of_recipients": "many", "number_of_messages": 1})


def test_batch_report_callback() -> None:
    report = parse_delivery_report(json.dumps(BATCH_REPORT))

    assert isinstance(report, BatchDeliveryReport)
    assert [s.status for s in report.statuses] == [DeliveryStatus.DELIVERED, DeliveryStatus.FAILED]
    assert report.statuses[1].code == 402


def test_summary_report_has_no_recipients() -> None:
    raw = json.loads(json.dumps(BATCH_REPORT))
    for status in raw["statuses"]:
        del status["recipients"]

    report = parse_delivery_report(json.dumps(raw))

    assert isinstance(report, BatchDeliveryReport)
    assert report.statuses[0].recipients == []


def test_recipient_report_callback_keeps_a_number_without_plus() -> None:
    raw = dict(RECIPIENT_REPORT, recipient="33662162466", new_field=[1])

    report = parse_delivery_report(json.dumps(raw).encode())

    assert isinstance(report, RecipientDeliveryReport)
    assert report.recipient == "33662162466"
    assert report.encoding == "GSM"
    assert report.model_extra == {"new_field": [1]}


def test_recipient_report_optional_fields_may_be_absent() -> None:
    minimal = {k: RECIPIENT_REPORT[k] for k in ("type", "batch_id", "recipient", "code", "status")}
    minimal["at"] = RECIPIENT_REPORT["at"]

    report = RecipientDeliveryReport.model_validate(minimal)

    assert report.client_reference is None
    assert report.operator_status_at is None


def test_an_unknown_status_still_parses() -> None:
    report = parse_delivery_report(json.dumps(dict(RECIPIENT_REPORT, status="Vaporised")))

    assert report.type == "recipient_delivery_report_sms"


@pytest.mark.parametrize(
    "raw",
    [
        dict(RECIPIENT_REPORT, type="delivery_report_fax"),
        dict(RECIPIENT_REPORT, code="zero"),
        dict(RECIPIENT_REPORT, at="whenever"),
        {k: v for k, v in RECIPIENT_REPORT.items() if k != "batch_id"},
        dict(BATCH_REPORT, statuses=[{"code": 0, "status": "Delivered"}]),
        dict(BATCH_REPORT, total_message_count=None),
        {"batch_id": "x"},
    ],
)
def test_malformed_reports_are_refused(raw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse_delivery_report(json.dumps(raw))


def test_mo_text() -> None:
    message = parse_inbound_message(json.dumps(MO_TEXT))

    assert isinstance(message, MoText)
    assert (message.from_, message.to, message.body) == ("+15551230001", "+15550009999", "STOP")


def test_mo_binary() -> None:
    raw = dict(MO_TEXT, type="mo_binary", body="SGVsbG8=", udh="050003010201")

    message = parse_inbound_message(json.dumps(raw))

    assert isinstance(message, MoBinary)
    assert message.udh == "050003010201"


@pytest.mark.parametrize(
    "raw",
    [
        {k: v for k, v in MO_TEXT.items() if k != "from"},
        dict(MO_TEXT, received_at=None),
        dict(MO_TEXT, type="mo_media"),
        dict(MO_TEXT, type="mo_binary"),  # binary needs its udh
    ],
)
def test_malformed_inbounds_are_refused(raw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse_inbound_message(json.dumps(raw))
