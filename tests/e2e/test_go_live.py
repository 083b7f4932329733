"""Going live on a real Sinch account, as a user runs it: ``smsgateway serve``/``worker``
processes with fake real credentials against the recording stand-in for Sinch."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.api_keys import issue_api_key
from tests.support.processes import (
    REPO_ROOT,
    free_port,
    gateway_environment,
    start_gateway,
    stop_gateway,
    wait_until_ready,
)
from tests.support.recording_sinch import RecordingSinch, recording_sinch

pytestmark = pytest.mark.slow

PUBLIC = "https://gw.example.com"
NUMBER = "+12025550123"


@pytest.fixture
def sinch() -> Iterator[RecordingSinch]:
    with recording_sinch() as stand_in:
        yield stand_in


def real_account(sinch: RecordingSinch, **overrides: str) -> dict[str, str]:
    """A gateway's environment with (fake) real credentials aimed at the stand-in."""
    return gateway_environment(
        **{
            "SINCH_BASE_URL": sinch.base_url,
            "SINCH_SERVICE_PLAN_ID": sinch.plan_id,
            "SINCH_API_TOKEN": sinch.token,
            "SMSGW_LOG_LEVEL": "WARNING",
            **overrides,
        }
    )


def run_cli(args: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smsgateway", *args],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("public_base_url", "expected"),
    [
        (None, "configuration error: PUBLIC_BASE_URL is not set; with real Sinch credentials"),
        ("http://127.0.0.1:8000", "names a loopback, private or local host"),
        ("http://10.1.2.3:8000", "names a loopback, private or local host"),
        ("https://gateway.local", "names a loopback, private or local host"),
        ("http://localhost:8000", "names a loopback, private or local host"),
        ("gw.example.com", "is not valid; it must be an http(s) URL with a host"),
    ],
)
def test_serve_refuses_to_go_live_without_a_public_url(
    sinch: RecordingSinch, tmp_path: Path, public_base_url: str | None, expected: str
) -> None:
    overrides = {"SMSGW_DATA_DIR": str(tmp_path), "SINCH_NUMBER": NUMBER}
    if public_base_url is not None:
        overrides["PUBLIC_BASE_URL"] = public_base_url
    result = run_cli(["serve"], real_account(sinch, **overrides))
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("configuration error: PUBLIC_BASE_URL")
    assert expected in line
    assert sinch.token not in line
    assert not (tmp_path / "pgdata").exists(), "nothing may start on a refused configuration"
    assert sinch.recorded() == []


def test_worker_refuses_too_and_the_simulator_needs_no_public_url(
    sinch: RecordingSinch, tmp_path: Path
) -> None:
    refused = run_cli(["worker"], real_account(sinch, SMSGW_DATA_DIR=str(tmp_path)))
    assert refused.returncode == 2
    assert refused.stderr.startswith("configuration error: PUBLIC_BASE_URL is not set")
    # The same private URL is allowed when the operator says Sinch reaches it privately.
    allowed = real_account(
        sinch,
        SMSGW_DATA_DIR=str(tmp_path),
        PUBLIC_BASE_URL="http://10.1.2.3:8000",
        SMSGW_ALLOW_PRIVATE_PUBLIC_BASE_URL="true",
        DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",
        SMSGW_SINCH_DEFAULT_ORIGINATOR="true",
    )
    checked = run_cli(["check"], allowed)
    assert "warn  public URL: http://10.1.2.3:8000 is private" in checked.stdout


def test_a_live_gateway_sends_from_its_number_with_a_public_callback_url(
    sinch: RecordingSinch, database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "gateway.log"
    environment = real_account(
        sinch,
        DATABASE_URL=database_url,
        PORT=str(port),
        PUBLIC_BASE_URL=PUBLIC,
        SINCH_NUMBER=NUMBER,
        SMSGW_DISPATCH_POLL_SECONDS="0.05",
    )
    key = asyncio.run(issue_api_key(database_url, "golive"))
    process = start_gateway(["serve"], environment, log)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", process, 60, log)
        accepted = httpx.post(
            f"http://127.0.0.1:{port}/v1/messages",
            headers={"X-API-Key": key},
            json={"to": ["+46701234567"], "body": "Live!"},
            timeout=10,
        )
        assert accepted.status_code == 202, accepted.text
        [request] = sinch.wait_for(1, "POST", "/batches")
    finally:
        assert stop_gateway(process) == 0
    assert request.headers["authorization"] == f"Bearer {sinch.token}"
    assert request.json["from"] == NUMBER
    assert request.json["to"] == ["+46701234567"]
    assert request.json["callback_url"].startswith(f"{PUBLIC}/webhooks/sinch")
    assert request.json["client_reference"] == accepted.json()["id"]
    assert sinch.token not in log.read_text()


def test_a_worker_without_any_sender_warns_once_at_start(
    sinch: RecordingSinch, database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    environment = real_account(
        sinch, DATABASE_URL=database_url, PUBLIC_BASE_URL=PUBLIC, SMSGW_LOG_LEVEL="INFO"
    )
    process = start_gateway(["worker"], environment, log)
    try:
        deadline = time.monotonic() + 30
        # Stopped only once it runs (its signal handlers are installed by then).
        while "outbox worker started" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        assert stop_gateway(process) == 0
    warnings = [line for line in log.read_text().splitlines() if "no sender" in line]
    assert len(warnings) == 1
    assert '"level": "warning"' in warnings[0]


def test_check_makes_one_authenticated_call_and_reports_what_it_found(
    sinch: RecordingSinch, database_url: str
) -> None:
    path_secret = "s3cr3t-path-segment-0123456789"
    environment = real_account(
        sinch,
        DATABASE_URL=database_url,
        PUBLIC_BASE_URL=PUBLIC,
        SINCH_NUMBER=NUMBER,
        SMSGW_WEBHOOK_PATH_SECRET=path_secret,
    )
    result = run_cli(["check"], environment)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert all(line.startswith(("ok  ", "warn  ")) for line in lines), lines
    assert any(line.startswith("ok    settings: valid; Sinch: a real account") for line in lines)
    assert f"ok    public URL: {PUBLIC}" in lines
    assert any(line.startswith("ok    database: reachable, schema at") for line in lines)
    assert (
        f"ok    Sinch: authenticated at {sinch.base_url} (region us); the account lists 0 batch(es)"
    ) in lines
    [webhook] = [line for line in lines if line.startswith("ok    webhook URL:")]
    assert f"{PUBLIC}/webhooks/sinch" in webhook
    assert "<path secret>" in webhook
    for secret in (path_secret, sinch.token):
        assert secret not in result.stdout + result.stderr
    [call] = sinch.recorded()
    assert (call.method, call.route) == ("GET", "/batches")
    assert call.query["page_size"] == "1"


def test_check_fails_on_a_wrong_token_and_a_missing_public_url(
    sinch: RecordingSinch, database_url: str
) -> None:
    environment = real_account(sinch, DATABASE_URL=database_url, SINCH_NUMBER=NUMBER)
    environment["SINCH_API_TOKEN"] = "not-the-token"
    result = run_cli(["check"], environment)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert (
        f"fail  Sinch: {sinch.base_url} refused the credentials (401): token or plan id wrong"
    ) in lines
    assert any(line.startswith("fail  public URL: PUBLIC_BASE_URL is not set") for line in lines)
    assert "not-the-token" not in result.stdout + result.stderr
    assert [(r.method, r.route, r.status) for r in sinch.recorded()] == [("GET", "/batches", 401)]


def test_check_says_clearly_when_sinch_cannot_be_reached(database_url: str) -> None:
    environment = gateway_environment(
        DATABASE_URL=database_url,
        SINCH_BASE_URL=f"http://127.0.0.1:{free_port()}",
        SINCH_SERVICE_PLAN_ID="plan",
        SINCH_API_TOKEN="token",
        PUBLIC_BASE_URL=PUBLIC,
        SINCH_NUMBER=NUMBER,
    )
    result = run_cli(["check"], environment)
    assert result.returncode == 1
    assert any(
        line.startswith("fail  Sinch: cannot reach http://127.0.0.1:")
        for line in result.stdout.splitlines()
    ), result.stdout


def test_check_reports_a_bad_setting_as_a_failed_check(tmp_path: Path) -> None:
    result = run_cli(
        ["check"], gateway_environment(SINCH_REGION="xx", SMSGW_DATA_DIR=str(tmp_path))
    )
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "fail  settings: configuration error: SINCH_REGION='xx' is not valid; "
        "allowed values: us, eu, au, br or ca"
    ]


def test_check_on_the_simulator_warns_that_nothing_is_real(database_url: str) -> None:
    result = run_cli(["check"], gateway_environment(DATABASE_URL=database_url))
    assert result.returncode == 0, result.stdout
    lines = result.stdout.splitlines()
    assert lines[0] == "ok    settings: valid; Sinch: the built-in simulator (no real account)"
    assert lines[-1].startswith("warn  Sinch: no credentials: the built-in simulator is used")
