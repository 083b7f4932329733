from __future__ import annotations

import pytest

from tests.support.processes import run_command as smsgateway

pytestmark = pytest.mark.slow


def test_create_list_revoke(database_url: str) -> None:
    created = smsgateway(database_url, "apikey", "create", "--name", "ops", "--rate", "10/second")
    assert created.returncode == 0, created.stderr
    key = created.stdout.splitlines()[0]
    assert key.startswith("sgw_")
    assert "shown" in created.stdout

    listed = smsgateway(database_url, "apikey", "list")
    assert key[:12] in listed.stdout
    assert key not in listed.stdout
    assert "active" in listed.stdout
    assert "10/second" in listed.stdout

    revoked = smsgateway(database_url, "apikey", "revoke", "ops")
    assert revoked.returncode == 0
    assert "revoked" in smsgateway(database_url, "apikey", "list").stdout


def test_bad_input_is_a_clear_error(database_url: str) -> None:
    bad_rate = smsgateway(database_url, "apikey", "create", "--name", "x", "--rate", "many")
    assert bad_rate.returncode == 2
    assert "600/minute" in bad_rate.stderr
    assert "Traceback" not in bad_rate.stderr
    missing = smsgateway(database_url, "apikey", "revoke", "nobody")
    assert missing.returncode == 1
    assert "no key" in missing.stderr
