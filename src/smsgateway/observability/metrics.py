"""Every Prometheus metric, defined once, and the exposition for one or several workers.

With several uvicorn workers, ``PROMETHEUS_MULTIPROC_DIR`` must be set before
``prometheus_client`` is first imported (the CLI does this), so that every worker writes its
samples to shared files and any worker can answer a scrape for all of them.
"""

from __future__ import annotations

import os
import platform

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
    multiprocess,
)

from smsgateway import __version__
from smsgateway.observability.metric_types import Counter, Gauge, Histogram

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Accepting a message is a few milliseconds; a Sinch round trip tens to hundreds.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "smsgw_http_requests_total",
    "HTTP requests answered, by route template, method and status class.",
    ["method", "route", "status_class"],
)
HTTP_REQUEST_DURATION = Histogram(
    "smsgw_http_request_duration_seconds",
    "Time from the first byte of a request to the end of its response.",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)
# labels() converts, locks and looks up on every call (0.7 us each, two per request), so the
# children are kept here by their label values: a set no larger than the metrics' own.
_http_request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def record_http_request(method: str, route: str, status: int, seconds: float) -> None:
    """Counts one answered request by route template, method and status class, with its time."""
    key = (method, route, status // 100)
    children = _http_request_children.get(key)
    if children is None:
        children = (
            HTTP_REQUESTS.labels(method, route, f"{status // 100}xx"),
            HTTP_REQUEST_DURATION.labels(method, route),
        )
        _http_request_children[key] = children
    requests, duration = children
    requests.inc()
    duration.observe(seconds)


HTTP_REQUESTS_IN_PROGRESS = Gauge(
    "smsgw_http_requests_in_progress",
    "Requests being served now, across all workers.",
    multiprocess_mode="livesum",
)
WORKER_RESIDENT_MEMORY = Gauge(
    "smsgw_worker_resident_memory_bytes",
    "Resident memory of each gateway worker process (labelled by pid under several workers).",
    multiprocess_mode="liveall",
)
WORKER_CPU_SECONDS = Gauge(
    "smsgw_worker_cpu_seconds",
    "CPU time used by each gateway worker process so far.",
    multiprocess_mode="liveall",
)
WORKER_OPEN_FDS = Gauge(
    "smsgw_worker_open_fds",
    "Open file descriptors of each gateway worker process.",
    multiprocess_mode="liveall",
)

BUILD_INFO = Gauge(
    "smsgw_build_info",
    "Always 1; the labels say which gateway version runs on which Python.",
    ["version", "python"],
    multiprocess_mode="max",
)
BUILD_INFO.labels(__version__, platform.python_version()).set(1)

_process_collector = ProcessCollector(registry=None)


def is_multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROCESS_ENV))


def sample_worker_process() -> None:
    """Copies this process's CPU, memory and fd counts into the per-worker gauges."""
    targets = {
        "process_resident_memory_bytes": WORKER_RESIDENT_MEMORY,
        "process_cpu_seconds_total": WORKER_CPU_SECONDS,
        "process_open_fds": WORKER_OPEN_FDS,
    }
    for family in _process_collector.collect():
        for sample in family.samples:
            gauge = targets.get(sample.name)
            if gauge is not None:
                gauge.set(sample.value)


def render_latest() -> tuple[bytes, str]:
    """The exposition text for a scrape, and its content type."""
    if is_multiprocess():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        sample_worker_process()
        return generate_latest(registry), CONTENT_TYPE_LATEST
    sample_worker_process()
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def mark_worker_dead(pid: int) -> None:
    """Drops a stopped worker's live gauges from the shared files."""
    if is_multiprocess():
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
