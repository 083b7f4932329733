"""`smsgateway simulator` as a subprocess on a free port, for tests that need the real command.

with simulator_process(["--service-plan-id", "plan", "--api-token", "token"]) as base_url:
    httpx.get(f"{base_url}/_admin/health")
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO

import httpx

from tests.support.processes import REPO_ROOT, free_port

START_DEADLINE_S = 20.0


def simulator_environment(**overrides: str) -> dict[str, str]:
    """The current environment without any SMSGW_/SINCH_ setting, plus `overrides`."""
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("SMSGW_", "SINCH_"))
    }
    environment.update(overrides)
    return environment


@contextmanager
def simulator_process(
    args: list[str], environment: Mapping[str, str] | None = None
) -> Iterator[str]:
    """Start the simulator with `args` (a free --port is added); yields its base URL."""
    port = free_port()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "smsgateway", "simulator", "--port", str(port), *args],
            cwd=REPO_ROOT,
            env=dict(environment if environment is not None else simulator_environment()),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(base_url, process, log)
            yield base_url
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run_simulator_command(
    args: list[str], environment: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `smsgateway simulator ARGS` to completion (for --help and refused options)."""
    return subprocess.run(
        [sys.executable, "-m", "smsgateway", "simulator", *args],
        cwd=REPO_ROOT,
        env=dict(environment if environment is not None else simulator_environment()),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _wait_until_up(base_url: str, process: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the simulator exited with {process.returncode}: {_read(log)}")
        try:
            if httpx.get(f"{base_url}/_admin/health", timeout=0.5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the simulator did not answer within {START_DEADLINE_S} s: {_read(log)}")


def _read(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")
