"""``smsgateway serve`` as a user runs it: embedded Postgres, restarts, workers, bad settings."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import asyncpg
import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import (
    REPO_ROOT,
    free_port,
    gateway_environment,
    start_gateway,
    stop_gateway,
    wait_until_ready,
)

pytestmark = pytest.mark.slow

T = TypeVar("T")


def postgres_processes_using(data_dir: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if process.info["name"] == "postgres" and str(data_dir) in cmdline:
            found.append(process)
    return found


def simulator_processes(port: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "simulator" in cmdline and port in cmdline:
            found.append(process)
    return found


def embedded_dsn(data_dir: Path) -> str:
    return f"postgresql://postgres@/smsgateway?host={data_dir / 'pgdata'}"


def test_embedded_serve_keeps_data_across_restarts_and_leaves_no_postgres(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    log = tmp_path / "gateway.log"
    port = free_port()
    environment = gateway_environment(SMSGW_DATA_DIR=str(data_dir), PORT=str(port))
    base_url = f"http://127.0.0.1:{port}"

    first = start_gateway(["serve", "--migrate"], environment, log)
    try:
        wait_until_ready(base_url, first, 60, log)
        assert httpx.get(f"{base_url}/healthz").json() == {"status": "ok"}
        simulator_port = environment["SMSGW_SIMULATOR_PORT"]
        assert len(simulator_processes(simulator_port)) == 1
        health = httpx.get(f"http://127.0.0.1:{simulator_port}/_admin/health")
        assert health.status_code == 200
        asyncio.run(_insert_marker(embedded_dsn(data_dir)))
    finally:
        assert stop_gateway(first) == 0
    assert postgres_processes_using(data_dir) == []
    assert simulator_processes(simulator_port) == []

    second = start_gateway(["serve"], environment, log)
    try:
        wait_until_ready(base_url, second, 60, log)
        assert asyncio.run(_marker_bodies(embedded_dsn(data_dir))) == ["survives restarts"]
    finally:
        assert stop_gateway(second) == 0
    assert postgres_processes_using(data_dir) == []
    output = log.read_text()
    assert "API docs:" in output
    assert "Sinch:      SIMULATOR at http://127.0.0.1:" in output
    assert output.count("Dev key:    sgw_") == 1, "a development key on the first start only"
    assert "Traceback" not in output


@contextmanager
def two_workers(database_url: str, log: Path) -> Iterator[int]:
    """``serve --workers 2`` on a free port, ready; yields the port, stops it cleanly after."""
    port = free_port()
    environment = gateway_environment(DATABASE_URL=database_url, PORT=str(port))
    process = start_gateway(["serve", "--workers", "2"], environment, log)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", process, 60, log)
        yield port
    finally:
        assert stop_gateway(process) == 0


def test_several_workers_share_one_set_of_metrics(database_url: str, tmp_path: Path) -> None:
    log = tmp_path / "gateway.log"
    with two_workers(database_url, log) as port:
        base_url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base_url) as client:
            for _ in range(40):
                assert client.get("/healthz").status_code == 200
            counts = set()
            pids = set()
            for _ in range(6):
                # A fresh connection each time, so the scrapes land on different workers.
                text = httpx.get(f"{base_url}/metrics", headers={"connection": "close"}).text
                counts.add(_healthz_count(text))
                pids |= _worker_pids(text)
    assert counts == {40.0}, "every worker must report the total of all workers"
    # Two API workers and the dispatch process beside them.
    assert len(pids) == 3, log.read_text()


def test_a_worker_that_dies_is_replaced_and_each_listens_on_its_own_socket(
    database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "gateway.log"
    with two_workers(database_url, log) as port:
        first = _poll(lambda: _listeners(port) if len(_listeners(port)) == 2 else None, 60)
        victim = min(first)
        psutil.Process(victim).kill()

        def replaced() -> set[int] | None:
            now = _listeners(port)
            return now if len(now) == 2 and victim not in now else None

        second = _poll(replaced, 60)
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
    assert second & first == first - {victim}
    assert "exited with -9" in log.read_text()


def _listeners(port: int) -> set[int]:
    """The processes listening on ``port``: with several workers, one socket each."""
    return {
        connection.pid
        for connection in psutil.net_connections(kind="tcp")
        if connection.status == psutil.CONN_LISTEN
        and connection.laddr.port == port
        and connection.pid is not None
    }


def _poll(probe: Callable[[], T | None], timeout_s: float) -> T:
    deadline = time.monotonic() + timeout_s
    while (found := probe()) is None:
        assert time.monotonic() < deadline, f"not within {timeout_s} s"
        time.sleep(0.05)
    return found


def test_a_wrong_setting_stops_start_up_with_one_clear_line(tmp_path: Path) -> None:
    environment = gateway_environment(SINCH_REGION="xx", SMSGW_DATA_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "smsgateway", "serve"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "configuration error: SINCH_REGION='xx' is not valid; allowed values: us, eu, au, br or ca"
    ]
    assert not (tmp_path / "pgdata").exists(), "nothing may start on a bad configuration"


def _healthz_count(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "smsgw_http_requests_total" and sample.labels["route"] == "/healthz":
                return sample.value
    return 0.0


def _worker_pids(text: str) -> set[str]:
    return {
        sample.labels["pid"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "smsgw_worker_resident_memory_bytes"
    }


async def _insert_marker(dsn: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "INSERT INTO sms_log (id, body, encoding, segment_count, character_count,"
            " recipient_count) VALUES (gen_random_uuid(), 'survives restarts', 'GSM-7', 1, 17, 1)"
        )
    finally:
        await connection.close()


async def _marker_bodies(dsn: str) -> list[str]:
    connection = await asyncpg.connect(dsn)
    try:
        return [row["body"] for row in await connection.fetch("SELECT body FROM sms_log")]
    finally:
        await connection.close()
