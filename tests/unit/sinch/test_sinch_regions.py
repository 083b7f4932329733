"""Regions map to Sinch's base URLs; OAuth2 only in us and eu; an override wins."""

from __future__ import annotations

import pytest

from smsgateway.sinch.regions import Region, oauth2_base_url, resolve_base_url, sms_base_url


@pytest.mark.parametrize("region", ["us", "eu", "au", "br", "ca"])
def test_every_region_has_a_token_url(region: str) -> None:
    assert sms_base_url(region) == f"https://{region}.sms.api.sinch.com"


def test_oauth2_hosts() -> None:
    assert oauth2_base_url(Region.US) == "https://zt.us.sms.api.sinch.com"
    assert oauth2_base_url("eu") == "https://zt.eu.sms.api.sinch.com"


@pytest.mark.parametrize("region", ["au", "br", "ca"])
def test_oauth2_is_refused_outside_us_and_eu(region: str) -> None:
    with pytest.raises(ValueError, match="only offered in us and eu"):
        oauth2_base_url(region)


def test_an_unknown_region_is_refused() -> None:
    with pytest.raises(ValueError, match="'xx'"):
        sms_base_url("xx")


def test_an_override_wins_without_its_trailing_slash() -> None:
    assert resolve_base_url("eu", oauth2=False, override="http://127.0.0.1:9000/") == (
        "http://127.0.0.1:9000"
    )
    assert resolve_base_url("us", oauth2=True) == "https://zt.us.sms.api.sinch.com"
    assert resolve_base_url("ca", oauth2=False) == "https://ca.sms.api.sinch.com"


def test_an_override_does_not_hide_an_impossible_region() -> None:
    with pytest.raises(ValueError, match="only offered in us and eu"):
        resolve_base_url("br", oauth2=True, override="http://127.0.0.1:9000")
