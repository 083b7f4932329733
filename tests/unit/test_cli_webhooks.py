"""``smsgateway webhooks`` with configured checks: no database needed, every credential shown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from smsgateway.cli import main

PATH_SECRET = "q7Yd0mR2c9LxV4sKf1HbT8uWzE3nJ6pA"


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)  # no .env from the working tree
    # The command would route the root logger to this test's stderr for the rest of the session.
    monkeypatch.setattr("smsgateway.cli.configure_logging", lambda level: None)
    for key in list(os.environ):
        if key.startswith(("SMSGW_", "SINCH_")) or key in ("DATABASE_URL", "PUBLIC_BASE_URL"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SINCH_SERVICE_PLAN_ID", "plan-1")
    monkeypatch.setenv("SINCH_API_TOKEN", "token-1")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://gw.example.com/")
    return monkeypatch


def test_it_prints_the_url_basic_credentials_and_signing(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    environment.setenv("SMSGW_WEBHOOK_PATH_SECRET", PATH_SECRET)
    environment.setenv("SMSGW_WEBHOOK_BASIC_USER", "sinch")
    environment.setenv("SMSGW_WEBHOOK_BASIC_PASSWORD", "b4sic-pass")
    environment.setenv("SMSGW_WEBHOOK_SIGNING_SECRET", "the-signing-secret")
    assert main(["webhooks"]) == 0
    out = capsys.readouterr().out
    assert f"  https://gw.example.com/webhooks/sinch/{PATH_SECRET}\n" in out
    assert "  user: sinch\n  password: b4sic-pass\n" in out
    assert "HMAC signing: expected" in out
    assert "the-signing-secret" not in out  # Sinch gives it to us, not the other way round
    assert "callback_url: none" in out
    assert out.startswith(
        "Authentication in force: HMAC signature (x-sinch-webhook-signature) + HTTP Basic "
        "(user 'sinch') + path secret (SMSGW_WEBHOOK_PATH_SECRET)"
    )


def test_auth_none_is_said_plainly(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    environment.setenv("SMSGW_WEBHOOK_AUTH", "none")
    assert main(["webhooks"]) == 0
    out = capsys.readouterr().out
    assert "Authentication in force: NONE (SMSGW_WEBHOOK_AUTH=none)" in out
    assert "  https://gw.example.com/webhooks/sinch\n" in out
