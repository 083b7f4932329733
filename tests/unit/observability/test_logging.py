from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest

from smsgateway.observability.logging import (
    FLUSH_AFTER_SECONDS,
    MAX_PENDING_LINES,
    JsonFormatter,
    JsonLinesHandler,
    configure_logging,
    request_id_var,
)


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


def written(stream: io.StringIO) -> list[str]:
    return [json.loads(line)["event"] for line in stream.getvalue().splitlines()]


def batching_logger(stream: io.StringIO) -> tuple[logging.Logger, JsonLinesHandler]:
    handler = JsonLinesHandler(stream)
    logger = logging.getLogger("smsgateway.test.batching")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, handler


def test_info_lines_in_a_loop_go_out_together_within_the_flush_delay() -> None:
    stream = io.StringIO()
    logger, _ = batching_logger(stream)

    async def log_three() -> list[str]:
        for event in ("one", "two", "three"):
            logger.info(event)
        waiting = written(stream)
        await asyncio.sleep(FLUSH_AFTER_SECONDS * 4)
        return waiting

    assert asyncio.run(log_three()) == []
    assert written(stream) == ["one", "two", "three"]


def test_a_warning_writes_itself_and_the_lines_before_it_at_once() -> None:
    stream = io.StringIO()
    logger, _ = batching_logger(stream)

    async def log_then_warn() -> list[str]:
        logger.info("before")
        logger.warning("careful")
        return written(stream)

    assert asyncio.run(log_then_warn()) == ["before", "careful"]


def test_a_loop_that_never_yields_holds_no_more_than_the_cap() -> None:
    stream = io.StringIO()
    logger, _ = batching_logger(stream)

    async def log_many() -> int:
        for n in range(MAX_PENDING_LINES + 10):
            logger.info(str(n))
        return len(written(stream))

    assert asyncio.run(log_many()) == MAX_PENDING_LINES


def test_lines_left_when_a_loop_ends_go_out_with_the_next_line_or_the_flush() -> None:
    stream = io.StringIO()
    logger, handler = batching_logger(stream)

    async def log(event: str) -> None:
        logger.info(event)

    asyncio.run(log("from a loop that ended at once"))
    assert written(stream) == []
    logger.info("outside any loop")  # written at once, after what waited
    assert written(stream) == ["from a loop that ended at once", "outside any loop"]
    asyncio.run(log("waiting"))
    handler.flush()
    assert written(stream)[-1] == "waiting"


_EXIT_RIGHT_AFTER_LOGGING = """
import asyncio, logging
from smsgateway.observability.logging import configure_logging

configure_logging("INFO")

async def main():
    for n in range(50):
        logging.getLogger("smsgateway.test").info("line", extra={"n": n})

asyncio.run(main())
"""


def test_no_line_is_lost_when_the_process_exits_right_after_writing() -> None:
    finished = subprocess.run(
        [sys.executable, "-c", _EXIT_RIGHT_AFTER_LOGGING],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = [json.loads(line) for line in finished.stderr.splitlines()]
    assert [line["n"] for line in lines] == list(range(50))
