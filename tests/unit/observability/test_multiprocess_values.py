"""Multiprocess metrics with the pid read once: spawned processes still add up in a scrape,
and a forked child still gets files of its own."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, values
from prometheus_client.multiprocess import MultiProcessCollector

from smsgateway.observability.multiprocess_values import install_pid_cached_values
from tests.support.metrics_child import count_requests_in_spawned_process


def scraped(directory: Path, name: str, labels: dict[str, str] | None = None) -> float:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    value = registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else value


@pytest.fixture
def metrics_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    yield tmp_path
    values.close_all_multiprocess_files()  # type: ignore[no-untyped-call]


@pytest.mark.slow
def test_requests_counted_in_spawned_processes_add_up_in_a_scrape(metrics_dir: Path) -> None:
    spawn = multiprocessing.get_context("spawn")
    children = [
        spawn.Process(target=count_requests_in_spawned_process, args=(requests,))
        for requests in (3, 4)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    labels = {"method": "POST", "route": "/v1/messages", "status_class": "2xx"}
    assert scraped(metrics_dir, "smsgw_http_requests_total", labels) == 7
    duration = {"method": "POST", "route": "/v1/messages"}
    assert scraped(metrics_dir, "smsgw_http_request_duration_seconds_count", duration) == 7


def test_a_forked_child_counts_in_files_of_its_own(
    metrics_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue())  # type: ignore[no-untyped-call]
    install_pid_cached_values()
    assert getattr(values.ValueClass, "_pid_cached", False)
    counter = Counter(
        "smsgw_test_forked_total", "Counted before, in and after a fork.", registry=None
    )
    counter.inc(2)
    child = os.fork()
    if child == 0:
        try:
            counter.inc(5)
        finally:
            os._exit(0)
    assert os.waitpid(child, 0)[1] == 0
    counter.inc(1)
    # Had the child written to the parent's file, the parent's next write would have erased it.
    assert scraped(metrics_dir, "smsgw_test_forked_total") == 8
    assert {path.name for path in metrics_dir.iterdir()} == {
        f"counter_{os.getpid()}.db",
        f"counter_{child}.db",
    }
