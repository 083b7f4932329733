"""The hooks through which the Sinch client reports what it does, without importing any metrics.

The app implements :class:`SinchObserver` with prometheus-client; the default does nothing.
Label values are the small fixed sets below, plus Sinch's own error codes, so they are safe as
metric labels.
"""

from __future__ import annotations

import logging
from typing import Literal, Protocol

logger = logging.getLogger(__name__)

Operation = Literal[
    "send_batch",
    "dry_run",
    "get_batch",
    "list_batches",
    "cancel_batch",
    "batch_delivery_report",
    "recipient_delivery_report",
]
"""One method of the client, as a metric label."""

Outcome = Literal[
    "ok",
    "rejected",
    "unauthorized",
    "rate_limited",
    "server_error",
    "not_sent",
    "outcome_unknown",
    "invalid_response",
]
"""How one HTTP exchange ended; ``outcome_unknown`` also covers a cancelled exchange."""

RetryReason = Literal["rate_limited", "server_error", "not_sent", "outcome_unknown"]
"""Why an operation is tried again."""


class SinchObserver(Protocol):
    """Receives one call per event; implementations must be cheap and should not raise.

    ``request_finished`` and ``in_flight`` are per HTTP exchange (a retried operation makes
    several); ``answered`` is per HTTP answer, with its status; ``retried`` is per retry;
    ``error`` is per error answer, with Sinch's ``code`` (``http_<status>`` when Sinch gave none).
    """

    def request_finished(self, operation: Operation, outcome: Outcome, seconds: float) -> None:
        """One HTTP exchange with Sinch ended after ``seconds``."""

    def answered(self, operation: Operation, status: int) -> None:
        """Sinch answered ``operation`` with HTTP ``status`` (any status, 2xx included)."""

    def retried(self, operation: Operation, reason: RetryReason) -> None:
        """``operation`` is about to be tried again because of ``reason``."""

    def error(self, operation: Operation, sinch_code: str) -> None:
        """Sinch answered ``operation`` with an error carrying ``sinch_code``."""

    def in_flight(self, delta: int) -> None:
        """An exchange started (+1) or ended (-1)."""


class NullObserver:
    """The default observer: ignores everything."""

    def request_finished(self, operation: Operation, outcome: Outcome, seconds: float) -> None:
        """Ignored."""

    def answered(self, operation: Operation, status: int) -> None:
        """Ignored."""

    def retried(self, operation: Operation, reason: RetryReason) -> None:
        """Ignored."""

    def error(self, operation: Operation, sinch_code: str) -> None:
        """Ignored."""

    def in_flight(self, delta: int) -> None:
        """Ignored."""


class GuardedObserver:
    """Wraps an observer so that a failing metric can never fail, or lose, a Sinch call.

    A send whose batch was created must return its batch id even if a counter raises.
    """

    def __init__(self, inner: SinchObserver) -> None:
        self._inner = inner

    def request_finished(self, operation: Operation, outcome: Outcome, seconds: float) -> None:
        """Forwards, logging instead of raising."""
        try:
            self._inner.request_finished(operation, outcome, seconds)
        except Exception:
            logger.exception("Sinch observer failed in request_finished")

    def answered(self, operation: Operation, status: int) -> None:
        """Forwards, logging instead of raising."""
        try:
            self._inner.answered(operation, status)
        except Exception:
            logger.exception("Sinch observer failed in answered")

    def retried(self, operation: Operation, reason: RetryReason) -> None:
        """Forwards, logging instead of raising."""
        try:
            self._inner.retried(operation, reason)
        except Exception:
            logger.exception("Sinch observer failed in retried")

    def error(self, operation: Operation, sinch_code: str) -> None:
        """Forwards, logging instead of raising."""
        try:
            self._inner.error(operation, sinch_code)
        except Exception:
            logger.exception("Sinch observer failed in error")

    def in_flight(self, delta: int) -> None:
        """Forwards, logging instead of raising."""
        try:
            self._inner.in_flight(delta)
        except Exception:
            logger.exception("Sinch observer failed in in_flight")
