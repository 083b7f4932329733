"""What a spawned gateway process does with metrics, run by tests in a child of their own."""

from __future__ import annotations

from prometheus_client import REGISTRY, values


def count_requests_in_spawned_process(requests: int) -> None:
    """Imports the whole app as a worker does, checks that every metric made at import uses
    the pid-cached multiprocess values, then counts ``requests`` requests."""
    import smsgateway.app  # noqa: F401  (every metric module, as in a worker)
    from smsgateway.observability.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS

    assert getattr(values.ValueClass, "_pid_cached", False), values.ValueClass
    for collector in list(REGISTRY._collector_to_names):
        value = getattr(collector, "_value", None) or getattr(collector, "_sum", None)
        assert value is None or isinstance(value, values.ValueClass), collector
    for _ in range(requests):
        HTTP_REQUESTS.labels("POST", "/v1/messages", "2xx").inc()
        HTTP_REQUEST_DURATION.labels("POST", "/v1/messages").observe(0.004)
