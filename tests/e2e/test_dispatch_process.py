"""``serve``'s default layout: API workers beside a dispatch process of their own.

The dispatch process sends what the API accepted, is replaced when it dies, and goes with the
supervisor however that ends (``kill -9`` included), so no process of an old gateway keeps
the port or the outbox.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import httpx
import psutil
import pytest

from tests.support.processes import (
    create_api_key,
    free_port,
    gateway_environment,
    start_gateway,
    stop_gateway,
    wait_until_ready,
)

pytestmark = pytest.mark.slow

T = TypeVar("T")
US_MOBILE = "+12015550123"


@contextmanager
def gateway(database_url: str, log: Path) -> Iterator[tuple[str, psutil.Process, str]]:
    """``serve`` with the default dispatcher layout; yields its URL, its supervisor, a key."""
    port = free_port()
    environment = gateway_environment(DATABASE_URL=database_url, PORT=str(port))
    environment.pop("SMSGW_DISPATCHER", None)
    key = asyncio.run(create_api_key(environment))
    process = start_gateway(["serve"], environment, log)
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_ready(base_url, process, 60, log)
        yield base_url, psutil.Process(process.pid), key
    finally:
        if process.poll() is None:
            assert stop_gateway(process) == 0


def workers_of(supervisor: psutil.Process) -> list[psutil.Process]:
    """The supervisor's worker processes (API and dispatch), all started by multiprocessing."""
    found = []
    for child in supervisor.children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            pass
    return found


def dispatch_processes(supervisor: psutil.Process) -> list[psutil.Process]:
    """The dispatch process is the worker that listens on no port."""
    found = []
    for worker in workers_of(supervisor):
        try:
            connections = worker.net_connections("tcp")
        except psutil.Error:
            continue
        if not any(c.status == psutil.CONN_LISTEN for c in connections):
            found.append(worker)
    return found


def send(base_url: str, key: str) -> str:
    answer = httpx.post(
        f"{base_url}/v1/messages",
        json={"to": [US_MOBILE], "body": "Your code is 123456"},
        headers={"X-API-Key": key},
    )
    assert answer.status_code == 202, answer.text
    message_id: str = answer.json()["id"]
    return message_id


def wait_submitted(base_url: str, key: str, message_id: str) -> None:
    def submitted() -> bool | None:
        answer = httpx.get(f"{base_url}/v1/messages/{message_id}", headers={"X-API-Key": key})
        return True if answer.json()["status"] != "queued" else None

    poll(submitted, 30)


def poll(probe: Callable[[], T | None], timeout_s: float) -> T:
    deadline = time.monotonic() + timeout_s
    while (found := probe()) is None:
        assert time.monotonic() < deadline, f"not within {timeout_s} s"
        time.sleep(0.05)
    return found


def test_the_dispatch_process_sends_and_is_replaced_when_it_dies(
    database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "gateway.log"
    with gateway(database_url, log) as (base_url, supervisor, key):
        dispatcher = poll(lambda: (dispatch_processes(supervisor) or [None])[0], 30)
        wait_submitted(base_url, key, send(base_url, key))

        dispatcher.kill()
        replacement = poll(
            lambda: next(
                (found for found in dispatch_processes(supervisor) if found.pid != dispatcher.pid),
                None,
            ),
            30,
        )
        wait_submitted(base_url, key, send(base_url, key))
        assert replacement.is_running()
    assert "exited with -9" in log.read_text()


def test_a_killed_supervisor_takes_its_workers_with_it(database_url: str, tmp_path: Path) -> None:
    log = tmp_path / "gateway.log"
    with gateway(database_url, log) as (base_url, supervisor, key):
        workers = poll(lambda: w if len(w := workers_of(supervisor)) == 2 else None, 30)
        simulators = [c for c in supervisor.children() if "simulator" in " ".join(c.cmdline())]
        wait_submitted(base_url, key, send(base_url, key))
        supervisor.kill()
        supervisor.wait(10)
        _, alive = psutil.wait_procs(workers, timeout=30)
        # The simulator outlives it on purpose: the next `serve` uses the one it finds running.
        for simulator in simulators:
            simulator.terminate()
        assert alive == [], [process.cmdline() for process in alive]


def test_the_access_lines_of_the_last_requests_are_in_the_log_after_a_stop(
    database_url: str, tmp_path: Path
) -> None:
    """The API worker writes its access lines from a template, in batches: after a stop
    (SIGTERM right after the last answer), every request's line is there, with every field."""
    log = tmp_path / "gateway.log"
    request_ids = [f"last-request-{n}" for n in range(30)]
    with (
        gateway(database_url, log) as (base_url, _, key),
        httpx.Client(base_url=base_url, headers={"X-API-Key": key}) as client,
    ):
        for request_id in request_ids:
            answer = client.get(
                f"/v1/messages/{uuid.uuid4()}", headers={"X-Request-ID": request_id}
            )
            assert answer.status_code == 404
    # Leaving the block sent SIGTERM right after the last answer, and saw the gateway exit 0.
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = {line["request_id"]: line for line in lines if line["logger"] == "smsgateway.access"}
    for request_id in request_ids:
        line = access[request_id]
        assert line["event"] == "request"
        assert line["level"] == "info"
        assert line["method"] == "GET"
        assert line["route"].startswith("/v1/messages/{message_id")
        assert line["status"] == 404
        assert line["duration_ms"] >= 0
        assert line["time"].endswith("+00:00")
