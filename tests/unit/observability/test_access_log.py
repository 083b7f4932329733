"""The access line written from its template is the line ``JsonFormatter`` would write, and
it is written from the template only where nothing else would see the record."""

from __future__ import annotations

import importlib
import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from smsgateway.observability.access_log import ACCESS_LOGGER, _sole_handler, log_request
from smsgateway.observability.logging import JsonFormatter, JsonLinesHandler, uvicorn_log_config

_TIME = re.compile(r'"time": "[^"]+"')


@contextmanager
def only_our_handler() -> Iterator[tuple[JsonLinesHandler, io.StringIO]]:
    """The root logger with one ``JsonLinesHandler``, as ``serve`` leaves it (pytest's own
    capture handlers, added for each test's call, set aside meanwhile)."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    stream = io.StringIO()
    handler = JsonLinesHandler(stream)
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        yield handler, stream
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def formatted_by_the_formatter(
    level: int, request_id: str, method: str, route: str, status: int, duration_ms: float
) -> str:
    logger = logging.getLogger(ACCESS_LOGGER)
    extra = {
        "request_id": request_id,
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": duration_ms,
    }
    record = logger.makeRecord(logger.name, level, __file__, 1, "request", (), None, extra=extra)
    return JsonFormatter().format(record)


@pytest.mark.parametrize(
    ("request_id", "method", "route", "status", "duration_ms"),
    [
        ("0123456789abcdef0123456789abcdef", "POST", "/v1/messages", 202, 4.2),
        ("caller-id.42", "GET", "/v1/messages/{message_id}", 404, 0.0),
        ("12015550123", "GET", "<unmatched>", 401, 12345.67),  # a number: masked
        ("call.12015550123", "DELETE", "/v1/messages/{message_id}", 500, 0.01),
        ("token:sk_live_abcdef", "PUT", 'a "quoted" \\ route é', 200, 1.5),
    ],
)
def test_the_template_writes_what_the_formatter_writes(
    request_id: str,
    method: str,
    route: str,
    status: int,
    duration_ms: float,
) -> None:
    with only_our_handler() as (handler, stream):
        assert _sole_handler(logging.INFO) is handler
        log_request(logging.INFO, request_id, method, route, status, duration_ms)
    expected = formatted_by_the_formatter(
        logging.INFO, request_id, method, route, status, duration_ms
    )
    [line] = stream.getvalue().splitlines()
    assert _TIME.sub("", line) == _TIME.sub("", expected)
    assert "12015550123" not in line
    assert "sk_live_abcdef" not in line
    assert json.loads(line)["time"].endswith("+00:00")


def test_a_quiet_route_below_the_level_writes_nothing() -> None:
    with only_our_handler() as (_, stream):
        log_request(logging.DEBUG, "probe", "GET", "/healthz", 200, 0.1)
    assert stream.getvalue() == ""


def test_another_handler_gets_the_record_through_logging(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with only_our_handler() as (_, stream), caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        logging.getLogger().addHandler(caplog.handler)
        assert _sole_handler(logging.INFO) is None
        log_request(logging.INFO, "seen-by-both", "GET", "/v1/messages", 200, 1.0)
    [record] = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert record.request_id == "seen-by-both"  # type: ignore[attr-defined]
    assert json.loads(stream.getvalue())["request_id"] == "seen-by-both"


def test_a_filter_on_the_way_is_honoured() -> None:
    with only_our_handler() as (handler, stream):
        handler.addFilter(lambda _record: False)
        assert _sole_handler(logging.INFO) is None
        log_request(logging.INFO, "filtered", "GET", "/v1/messages", 200, 1.0)
    assert stream.getvalue() == ""


def test_workers_log_config_uses_the_batching_handler() -> None:
    """What uvicorn (API workers) and the dispatch process configure with ``dictConfig``."""
    config = uvicorn_log_config("INFO")
    module, _, name = config["handlers"]["stderr"]["()"].rpartition(".")
    assert getattr(importlib.import_module(module), name) is JsonLinesHandler
    assert config["root"]["handlers"] == ["stderr"]
