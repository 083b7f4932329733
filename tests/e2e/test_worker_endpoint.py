"""``smsgateway worker`` serves its own /metrics and health, and refuses a taken port."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.processes import (
    free_port,
    gateway_environment,
    run_command,
    start_gateway,
    stop_gateway,
    wait_until_ready,
)
from tests.support.simulator_process import simulator_process


@pytest.mark.slow
def test_the_worker_serves_metrics_and_health_on_its_port(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "worker.log"
    with simulator_process([]) as simulator:
        environment = gateway_environment(
            DATABASE_URL=database_url,
            SMSGW_WORKER_METRICS_PORT=str(port),
            # Without Sinch credentials a worker sends to a simulator that must be running.
            SMSGW_SIMULATOR_PORT=simulator.rsplit(":", 1)[1],
        )
        worker = start_gateway(["worker"], environment, log)
        _check_endpoint(worker, port, log)


def _check_endpoint(worker: subprocess.Popen[bytes], port: int, log: Path) -> None:
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_ready(base, worker, 60, log)
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        scrape = httpx.get(f"{base}/metrics")
        assert scrape.status_code == 200
        assert scrape.headers["content-type"].startswith("text/plain")
        for family in (
            "smsgw_dispatch_latency_seconds_bucket",
            "smsgw_submitted_to_first_report_seconds_bucket",
            "smsgw_outbox_depth",
        ):
            assert family in scrape.text, family
    finally:
        assert stop_gateway(worker) == 0, log.read_text()


def test_a_taken_metrics_port_refuses_the_start_in_one_line(database_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with simulator_process([]) as simulator:
            refused = run_command(
                database_url,
                "worker",
                SMSGW_WORKER_METRICS_PORT=str(port),
                SMSGW_SIMULATOR_PORT=simulator.rsplit(":", 1)[1],
            )
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert lines == [
        f"error: SMSGW_WORKER_METRICS_PORT {port} on 127.0.0.1 is already in use; pick a free "
        "port (or leave it unset to serve no metrics)"
    ], refused.stderr
