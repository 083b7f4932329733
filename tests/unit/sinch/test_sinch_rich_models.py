"""MMS and binary batches on the wire: what the client sends, and Sinch's answers parsed."""

from __future__ import annotations

from smsgateway.sinch.models import (
    Batch,
    BinaryBatchRequest,
    DeliveryReportType,
    MediaBatchRequest,
    MediaBody,
    to_wire,
)


def test_an_mms_batch_has_type_mt_media_and_a_body_object() -> None:
    request = MediaBatchRequest(
        to=["+12025550143"],
        from_="+12025550123",
        body=MediaBody(url="https://cdn.example.com/cat.jpg", subject="Cat"),
        strict_validation=True,
        delivery_report=DeliveryReportType.PER_RECIPIENT,
        client_reference="m-1",
    )
    assert to_wire(request) == {
        "type": "mt_media",
        "to": ["+12025550143"],
        "from": "+12025550123",
        "body": {"url": "https://cdn.example.com/cat.jpg", "subject": "Cat"},
        "strict_validation": True,
        "delivery_report": "per_recipient",
        "client_reference": "m-1",
    }


def test_a_binary_batch_has_type_mt_binary_with_body_and_udh() -> None:
    request = BinaryBatchRequest(to=["+12025550143"], body="SGVsbG8=", udh="050003cc0201")
    assert to_wire(request) == {
        "type": "mt_binary",
        "to": ["+12025550143"],
        "body": "SGVsbG8=",
        "udh": "050003cc0201",
    }


def test_a_stored_mms_batch_parses_with_its_body_object() -> None:
    batch = Batch.model_validate(
        {
            "id": "01FC66621XXXXX119Z8PMV1QPQ",
            "to": ["12025550143"],
            "type": "mt_media",
            "body": {"url": "https://cdn.example.com/cat.jpg", "message": "Look"},
            "canceled": False,
            "client_reference": "m-1",
        }
    )
    assert batch.type == "mt_media"
    assert batch.body == {"url": "https://cdn.example.com/cat.jpg", "message": "Look"}
