"""Start-up mistakes are refused in one line on stderr, before anything starts or is shared."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.processes import (
    REPO_ROOT,
    free_port,
    gateway_environment,
    start_gateway,
    stop_gateway,
    wait_until_ready,
)
from tests.support.simulator_process import simulator_process

pytestmark = pytest.mark.slow


def refusal(args: list[str], environment: dict[str, str]) -> str:
    """Runs ``smsgateway ARGS``, which must refuse: returns its one line of stderr."""
    result = subprocess.run(
        [sys.executable, "-m", "smsgateway", *args],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@contextmanager
def listening_socket(port: int, *, reuse_port: bool = False) -> Iterator[None]:
    """Something that is not smsgateway, listening on ``port``."""
    with socket.socket() as sock:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (["--port", "0"], "error: --port 0 is outside 1-65535"),
        (["--port", "65536"], "error: --port 65536 is outside 1-65535"),
        (["--workers", "0"], "error: --workers 0 is outside 1-64"),
    ],
)
def test_options_out_of_range_are_refused(option: list[str], expected: str, tmp_path: Path) -> None:
    environment = gateway_environment(SMSGW_DATA_DIR=str(tmp_path))
    assert refusal(["serve", *option], environment) == expected
    assert not (tmp_path / "pgdata").exists(), "nothing may start on a bad option"


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("reuse_port", [False, True])
def test_a_port_in_use_is_refused(
    database_url: str, tmp_path: Path, workers: str, reuse_port: bool
) -> None:
    port = free_port()
    environment = gateway_environment(DATABASE_URL=database_url, PORT=str(port))
    with listening_socket(port, reuse_port=reuse_port):
        line = refusal(["serve", "--workers", workers], environment)
    assert line == (
        f"error: port {port} on 127.0.0.1 is already in use (another smsgateway or another "
        "program); choose a free one with --port or PORT"
    )


def test_a_second_gateway_does_not_share_the_first_ones_reuse_port_sockets(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    environment = gateway_environment(DATABASE_URL=database_url, PORT=str(port))
    log = tmp_path / "first.log"
    first = start_gateway(["serve", "--workers", "2"], environment, log)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", first, 60, log)
        line = refusal(["serve", "--workers", "2"], environment)
        assert line.startswith(f"error: port {port} on 127.0.0.1 is already in use"), line
    finally:
        assert stop_gateway(first) == 0


def test_a_simulator_port_taken_by_another_program_is_refused(
    database_url: str, tmp_path: Path
) -> None:
    simulator_port = free_port()
    environment = gateway_environment(
        DATABASE_URL=database_url,
        PORT=str(free_port()),
        SMSGW_SIMULATOR_PORT=str(simulator_port),
    )
    with listening_socket(simulator_port):
        line = refusal(["serve"], environment)
    assert line == (
        f"error: the simulator's port {simulator_port} is taken by a program that is not the "
        "smsgateway simulator; set SMSGW_SIMULATOR_PORT to a free port"
    )


def test_a_worker_without_credentials_refuses_when_no_simulator_answers(
    database_url: str,
) -> None:
    simulator_port = free_port()
    environment = gateway_environment(
        DATABASE_URL=database_url, SMSGW_SIMULATOR_PORT=str(simulator_port)
    )
    assert refusal(["worker"], environment) == (
        "error: no Sinch credentials are set (SINCH_SERVICE_PLAN_ID and SINCH_API_TOKEN) and no "
        f"smsgateway simulator answers at http://127.0.0.1:{simulator_port}; set them, or start "
        "`smsgateway serve` or `smsgateway simulator` there first"
    )


def test_a_worker_without_credentials_says_which_simulator_it_uses(
    database_url: str, tmp_path: Path
) -> None:
    with simulator_process([]) as base_url:
        simulator_port = base_url.rsplit(":", 1)[1]
        environment = gateway_environment(
            DATABASE_URL=database_url, SMSGW_SIMULATOR_PORT=simulator_port
        )
        log = tmp_path / "worker.log"
        worker = start_gateway(["worker"], environment, log)
        try:
            expected = (
                f"worker: SIMULATOR at {base_url}: no Sinch credentials are configured, "
                "nothing reaches a real phone"
            )
            _wait_for_line(log, expected, worker)
            # Stopped once it runs (before its signal handlers are set, SIGTERM just ends it).
            _wait_for_text(log, "outbox worker started", worker)
        finally:
            assert stop_gateway(worker) == 0
        health = httpx.get(f"{base_url}/_admin/health").json()
    assert health == {"status": "ok", "service": "smsgateway-simulator"}


def _wait_for_line(log: Path, expected: str, process: subprocess.Popen[bytes]) -> None:
    _wait_for(lambda: expected in log.read_text().splitlines(), log, process)


def _wait_for_text(log: Path, expected: str, process: subprocess.Popen[bytes]) -> None:
    _wait_for(lambda: expected in log.read_text(), log, process)


def _wait_for(seen: Callable[[], bool], log: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while not seen():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
