"""The access line: one per answered request, written without a ``LogRecord`` when it can be.

Through ``Logger.log`` the line cost 16 us in the API process (a record with its caller,
thread and pid, then ``JsonFormatter`` walking the record's attributes). When the only
handler the line would reach is our ``JsonLinesHandler`` with no filters on the way (how
``serve`` configures logging), the same JSON is written from a template instead. Otherwise
(a test capturing records, another handler added) it goes through ``Logger.log`` as before.
"""

from __future__ import annotations

import logging
import time
from json.encoder import encode_basestring

from smsgateway.observability.logging import JsonFormatter, JsonLinesHandler, iso_time
from smsgateway.observability.masking import redact

ACCESS_LOGGER = "smsgateway.access"
_logger = logging.getLogger(ACCESS_LOGGER)
# JsonFormatter's keys, in its order; the request id goes through ``redact`` as there.
_AFTER_LEVEL = f', "logger": {encode_basestring(ACCESS_LOGGER)}, "event": "request", "request_id": '


def log_request(
    level: int, request_id: str, method: str, route: str, status: int, duration_ms: float
) -> None:
    """Writes the access line of one request: request id, method, route template, status and
    duration, as the ``JsonFormatter`` would."""
    if not _logger.isEnabledFor(level):
        return
    handler = _sole_handler(level)
    if handler is None:
        _logger.log(
            level,
            "request",
            extra={
                "request_id": request_id,
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": duration_ms,
            },
        )
        return
    line = (
        f'{{"time": "{iso_time(time.time())}", "level": "{logging.getLevelName(level).lower()}"'
        f"{_AFTER_LEVEL}{encode_basestring(redact(request_id))}"
        f', "method": {encode_basestring(method)}, "route": {encode_basestring(route)}'
        f', "status": {int.__repr__(status)}, "duration_ms": {duration_ms!r}}}'
    )
    handler.write_line(line, level)


def _sole_handler(level: int) -> JsonLinesHandler | None:
    """The one handler the access line would reach, if it is a ``JsonLinesHandler`` and no
    filter or other handler stands on the way; else None."""
    found: JsonLinesHandler | None = None
    logger: logging.Logger | None = _logger
    while logger is not None:
        if logger.filters:
            return None
        for handler in logger.handlers:
            if level < handler.level:
                continue
            if (
                found is not None
                or type(handler) is not JsonLinesHandler
                or type(handler.formatter) is not JsonFormatter
                or handler.filters
            ):
                return None
            found = handler
        if not logger.propagate:
            break
        logger = logger.parent
    return found
