"""`smsgateway retention show|set|clear`: a tenant's own retention window from the shell."""

from __future__ import annotations

import json

import pytest

from tests.support.processes import run_command as smsgateway

pytestmark = pytest.mark.slow


def test_set_show_and_clear_a_tenants_window(database_url: str) -> None:
    shown = smsgateway(database_url, "retention", "show", "--tenant", "acme")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["source"] == "gateway default"

    stored = smsgateway(
        database_url,
        "retention",
        "set",
        "--tenant",
        "acme",
        "--redact-after-days",
        "30",
        "--delete-after-days",
        "keep",
        "--by",
        "ann",
    )
    assert stored.returncode == 0, stored.stderr
    window = json.loads(stored.stdout)
    assert (window["source"], window["updated_by"]) == ("stored", "ann")
    assert (window["redact_after_days"], window["delete_after_days"]) == (30, None)
    again = json.loads(smsgateway(database_url, "retention", "show", "--tenant", "acme").stdout)
    assert again["redact_after_days"] == 30

    bad = smsgateway(
        database_url,
        "retention",
        "set",
        "--tenant",
        "acme",
        "--redact-after-days",
        "0",
        "--delete-after-days",
        "keep",
    )
    assert bad.returncode == 2
    assert "1 to 36500 days" in bad.stderr
    assert "Traceback" not in bad.stderr

    cleared = smsgateway(database_url, "retention", "clear", "--tenant", "acme")
    assert json.loads(cleared.stdout)["source"] == "gateway default"
