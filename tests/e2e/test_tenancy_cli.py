"""``smsgateway apikey create --scope``, ``sender assign|unassign|list`` and
``tenant callback``, run as an operator runs them."""

from __future__ import annotations

import pytest

from tests.support.processes import run_command as smsgateway

pytestmark = pytest.mark.slow


def test_keys_are_created_with_the_scopes_asked_for(database_url: str) -> None:
    default = smsgateway(database_url, "apikey", "create", "--name", "svc", "--tenant", "acme")
    assert default.returncode == 0, default.stderr
    assert "scopes=read,send" in default.stdout
    admin = smsgateway(
        database_url, "apikey", "create", "--name", "ops", "--scope", "admin", "--scope", "read"
    )
    assert "scopes=admin,read" in admin.stdout
    listed = smsgateway(database_url, "apikey", "list").stdout
    assert "scopes=admin,read" in listed
    assert "scopes=read,send" in listed
    bad = smsgateway(database_url, "apikey", "create", "--name", "x", "--scope", "write")
    assert bad.returncode == 2
    assert "'write' is not a scope" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_senders_are_assigned_listed_and_unassigned(database_url: str) -> None:
    assigned = smsgateway(database_url, "sender", "assign", "12025550101", "acme")
    assert assigned.returncode == 0, assigned.stderr
    # Read as inbound `to` is: E.164 with its '+'.
    assert "+12025550101 belongs to tenant acme" in assigned.stdout
    assert "tenant=acme" in smsgateway(database_url, "sender", "list").stdout
    assert smsgateway(database_url, "sender", "unassign", "+12025550101").returncode == 0
    again = smsgateway(database_url, "sender", "unassign", "+12025550101")
    assert again.returncode == 1
    assert "no tenant" in again.stderr


def test_a_tenants_callback_url_is_checked_and_can_be_cleared(database_url: str) -> None:
    refused = smsgateway(database_url, "tenant", "callback", "acme", "ftp://acme.example/hook")
    assert refused.returncode == 2
    assert "http(s)" in refused.stderr
    set_ = smsgateway(database_url, "tenant", "callback", "acme", "https://acme.example/sms")
    assert set_.returncode == 0, set_.stderr
    assert "events go to https://acme.example/sms" in set_.stdout
    assert "callbacks=https://acme.example/sms" in smsgateway(database_url, "tenant", "list").stdout
    cleared = smsgateway(database_url, "tenant", "callback", "acme", "--clear")
    assert "nowhere" in cleared.stdout
