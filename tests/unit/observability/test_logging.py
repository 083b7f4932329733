from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from smsgateway.observability.logging import JsonFormatter, configure_logging, request_id_var


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    configure_logging("INFO")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("smsgateway.test")
    logger.addHandler(handler)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logging.getLogger().handlers.clear()


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_line_is_one_json_object_with_the_request_id(captured: io.StringIO) -> None:
    token = request_id_var.set("req-123")
    try:
        logging.getLogger("smsgateway.test").info("sent", extra={"segments": 2})
    finally:
        request_id_var.reset(token)
    [line] = lines(captured)
    assert line["event"] == "sent"
    assert line["request_id"] == "req-123"
    assert line["segments"] == 2
    assert line["level"] == "info"


def test_an_explicit_request_id_extra_does_not_clash_with_the_stamped_one(
    captured: io.StringIO,
) -> None:
    token = request_id_var.set("from-context")
    try:
        logging.getLogger("smsgateway.test").info("x", extra={"request_id": "explicit"})
    finally:
        request_id_var.reset(token)
    [line] = lines(captured)
    assert line["request_id"] == "explicit"


def test_phone_numbers_and_tokens_are_masked_in_messages_and_extras(captured: io.StringIO) -> None:
    logging.getLogger("smsgateway.test").warning(
        "sending to %s with Authorization: Bearer sk_live_abcdef",
        "+15551234567",
        extra={"recipients": ["+46701234567", "33662162466"]},
    )
    raw = captured.getvalue()
    assert "15551234567" not in raw
    assert "46701234567" not in raw
    assert "33662162466" not in raw
    assert "sk_live_abcdef" not in raw
    [line] = lines(captured)
    assert "+1555***4567" in str(line["event"])
    assert line["recipients"] == ["+4670***4567", "3366***2466"]


def test_exceptions_are_logged_with_their_traceback(captured: io.StringIO) -> None:
    try:
        raise ValueError("broken")
    except ValueError:
        logging.getLogger("smsgateway.test").exception("failed")
    [line] = lines(captured)
    assert "Traceback" in str(line["exception"])
    assert "ValueError: broken" in str(line["exception"])
