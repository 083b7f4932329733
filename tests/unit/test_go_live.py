"""The go-live rules read from settings (services/go_live.py): refusal lines and warnings."""

from __future__ import annotations

from typing import Any

import pytest

from smsgateway.services.go_live import (
    display_url,
    public_url_finding,
    sender_finding,
    sender_warning,
    start_up_refusal,
)
from tests.support.settings import IsolatedSettings

REAL = {"SINCH_SERVICE_PLAN_ID": "plan", "SINCH_API_TOKEN": "tok-secret"}


def real(**overrides: Any) -> IsolatedSettings:
    return IsolatedSettings(**{**REAL, **overrides})


def test_the_simulator_needs_neither_a_public_url_nor_a_sender() -> None:
    settings = IsolatedSettings()
    assert settings.uses_simulator
    assert start_up_refusal(settings) is None
    assert sender_warning(settings) is None
    assert not settings.sender_required
    assert sender_finding(settings).status == "ok"


def test_real_credentials_without_a_public_url_refuse_start_up_in_one_line() -> None:
    line = start_up_refusal(real(port=9000))
    assert line is not None
    assert "\n" not in line
    assert line.startswith("configuration error: PUBLIC_BASE_URL is not set")
    assert "http://127.0.0.1:9000" in line
    assert "tok-secret" not in line


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000", "http://192.168.0.2", "https://gw.local", "http://[::1]"]
)
def test_a_private_public_url_is_refused_unless_allowed(url: str) -> None:
    refused = start_up_refusal(real(PUBLIC_BASE_URL=url))
    assert refused is not None
    assert "SMSGW_ALLOW_PRIVATE_PUBLIC_BASE_URL=true" in refused
    allowed = real(PUBLIC_BASE_URL=url, allow_private_public_base_url=True)
    assert start_up_refusal(allowed) is None
    assert public_url_finding(allowed).status == "warn"


def test_a_public_url_passes_and_hides_any_password_in_it() -> None:
    assert start_up_refusal(real(PUBLIC_BASE_URL="https://gw.example.com")) is None
    refused = start_up_refusal(real(PUBLIC_BASE_URL="ftp://user:hunter2@gw.example.com"))
    assert refused is not None
    assert "hunter2" not in refused
    assert display_url("https://u:p@gw.example.com:8443/x") == "https://***@gw.example.com:8443/x"


def test_no_sender_at_all_warns_and_requires_a_sender() -> None:
    settings = real(PUBLIC_BASE_URL="https://gw.example.com")
    assert settings.sender_required
    warning = sender_warning(settings)
    assert warning is not None
    assert warning.startswith("no sender: SINCH_NUMBER is unset")


@pytest.mark.parametrize(
    ("overrides", "required", "warns"),
    [
        ({"SINCH_NUMBER": "+12025550123"}, True, False),
        ({"sinch_default_originator": True}, False, False),
        ({"allowed_senders": ["ACME"]}, True, False),
        ({"sinch_simulator": "on"}, False, False),
    ],
)
def test_a_sender_from_anywhere_silences_the_warning(
    overrides: dict[str, Any], required: bool, warns: bool
) -> None:
    settings = real(**overrides)
    assert settings.sender_required is required
    assert (sender_warning(settings) is not None) is warns
