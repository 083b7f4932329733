"""Run the real ``smsgateway`` command in a subprocess and wait for it with deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from tests.support.polling import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def gateway_environment(**overrides: str) -> dict[str, str]:
    """The current environment minus anything that would point the gateway elsewhere."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SMSGW_", "SINCH_", "PROMETHEUS_"))
        and key not in {"DATABASE_URL", "PORT"}
    }
    # `serve` starts the Sinch simulator when no credentials are set: never on a fixed port.
    environment["SMSGW_SIMULATOR_PORT"] = str(free_port())
    # One process unless a test asks for more (the default follows the machine's CPUs).
    environment["SMSGW_WORKERS"] = "1"
    environment.update(overrides)
    return environment


def run_command(
    database_url: str, *args: str, **environment: str
) -> subprocess.CompletedProcess[str]:
    """``smsgateway ARGS`` to completion against ``database_url`` (and ``environment``)."""
    return subprocess.run(
        [sys.executable, "-m", "smsgateway", *args],
        cwd=REPO_ROOT,
        env=gateway_environment(DATABASE_URL=database_url, **environment),
        capture_output=True,
        text=True,
        timeout=60,
    )


def start_gateway(
    args: list[str], environment: Mapping[str, str], log: Path
) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "smsgateway", *args],
            cwd=REPO_ROOT,
            env=dict(environment),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


def wait_until_ready(
    base_url: str, process: subprocess.Popen[bytes], deadline_seconds: float, log: Path
) -> float:
    """Polls ``/readyz`` until 200; returns the seconds it took. Fails fast if the process exits."""
    started = time.monotonic()
    while time.monotonic() - started < deadline_seconds:
        if process.poll() is not None:
            raise AssertionError(f"gateway exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1.0).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"gateway not ready within {deadline_seconds} s:\n{log.read_text()}")


def stop_gateway(process: subprocess.Popen[bytes], deadline_seconds: float = 20.0) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=deadline_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


async def wait_for_simulator(
    admin: httpx.AsyncClient, process: subprocess.Popen[bytes], log: Path
) -> None:
    """Until the simulator ``process`` answers its health check; fails fast if it exits."""

    async def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(exit_report("the simulator", process, log))
        try:
            return (await admin.get("/_admin/health")).status_code == 200
        except httpx.TransportError:
            return False

    await wait_until(answers, timeout_s=30, interval_s=0.05, message="the simulator to answer")


async def create_api_key(environment: dict[str, str]) -> str:
    """A new API key with a limit no test reaches, made by the real ``apikey create``."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "smsgateway",
        "apikey",
        "create",
        "--name",
        "crash",
        "--rate",
        "1000000/second",
        cwd=REPO_ROOT,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode().splitlines()[0]


def exit_report(name: str, process: subprocess.Popen[bytes], log: Path) -> str:
    return f"{name} exited with {process.returncode}:\n{log.read_text()}"


def end_process(process: subprocess.Popen[bytes]) -> None:
    """Stops ``process`` if it still runs (SIGTERM, then SIGKILL after 10 s)."""
    if process.poll() is not None:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        stop_gateway(process, deadline_seconds=10)
