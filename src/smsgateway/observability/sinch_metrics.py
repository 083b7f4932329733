"""Prometheus metrics for the Sinch client, through its observer hooks."""

from __future__ import annotations

from smsgateway.observability.metric_types import Counter, Gauge, Histogram

SINCH_REQUEST_DURATION = Histogram(
    "smsgw_sinch_request_duration_seconds",
    "One HTTP exchange with Sinch, by operation and outcome.",
    ["operation", "outcome"],
    buckets=(0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
SINCH_RETRIES = Counter(
    "smsgw_sinch_retries_total",
    "Sinch operations tried again, by operation and reason.",
    ["operation", "reason"],
)
SINCH_ERRORS = Counter(
    "smsgw_sinch_errors_total",
    "Error answers from Sinch, by operation and Sinch's code (http_<status> without one).",
    ["operation", "code"],
)
SINCH_RESPONSES = Counter(
    "smsgw_sinch_responses_total",
    "HTTP answers from Sinch, by operation and HTTP status (2xx included; exchanges that got "
    "no answer are in smsgw_sinch_request_duration_seconds with their outcome).",
    ["operation", "status"],
)
SINCH_IN_FLIGHT = Gauge(
    "smsgw_sinch_requests_in_flight",
    "HTTP exchanges with Sinch under way, across all workers.",
    multiprocess_mode="livesum",
)


class PrometheusSinchObserver:
    """Implements the Sinch client's observer protocol with the metrics above."""

    def request_finished(self, operation: str, outcome: str, seconds: float) -> None:
        SINCH_REQUEST_DURATION.labels(operation, outcome).observe(seconds)

    def answered(self, operation: str, status: int) -> None:
        SINCH_RESPONSES.labels(operation, str(status)).inc()

    def retried(self, operation: str, reason: str) -> None:
        SINCH_RETRIES.labels(operation, reason).inc()

    def error(self, operation: str, sinch_code: str) -> None:
        SINCH_ERRORS.labels(operation, sinch_code).inc()

    def in_flight(self, delta: int) -> None:
        SINCH_IN_FLIGHT.inc(delta)
