"""``smsgateway callback-secret``: a fresh whsec_ secret, even while the configuration is
refused (it is how a refused callback secret gets fixed)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from smsgateway.cli import main
from smsgateway.domain.standard_webhooks import SigningSecret, webhook_headers


def test_it_prints_a_new_secret_the_standard_library_accepts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMSGW_CALLBACK_SIGNING_SECRET", "the-refused-pre-standard-secret")
    assert main(["callback-secret"]) == 0
    assert main(["callback-secret"]) == 0
    first, second = capsys.readouterr().out.splitlines()
    assert first != second
    secret = SigningSecret.parse(first)
    assert len(secret.key) == 32
    headers = webhook_headers("evt1", 1_700_000_000, b"{}", [secret])
    at = datetime.fromtimestamp(1_700_000_000, UTC)
    assert Webhook(first).sign("evt1", at, "{}") == headers["webhook-signature"]
