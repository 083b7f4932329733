"""Sinch SMS regions and the base URLs they map to.

API-token calls go to ``https://{region}.sms.api.sinch.com`` in every region; OAuth2 calls go to
``https://zt.{region}.sms.api.sinch.com`` and exist only in ``us`` and ``eu``. A base-URL override
(the simulator, tests, an egress proxy) wins over both.
"""

from __future__ import annotations

from enum import StrEnum

OAUTH2_TOKEN_URL = "https://auth.sinch.com/oauth2/token"
"""Where OAuth2 client credentials are exchanged for an access token (one URL for us and eu)."""


class Region(StrEnum):
    """A Sinch SMS region; accounts are created in ``us`` unless asked otherwise."""

    US = "us"
    EU = "eu"
    AU = "au"
    BR = "br"
    CA = "ca"


OAUTH2_REGIONS: frozenset[Region] = frozenset({Region.US, Region.EU})


def sms_base_url(region: Region | str) -> str:
    """The base URL for API-token calls in ``region``; raises ``ValueError`` for an unknown one."""
    return f"https://{Region(region).value}.sms.api.sinch.com"


def oauth2_base_url(region: Region | str) -> str:
    """The base URL for OAuth2 calls in ``region``; raises ``ValueError`` outside us and eu."""
    checked = Region(region)
    if checked not in OAUTH2_REGIONS:
        raise ValueError(f"Sinch OAuth2 is only offered in us and eu, not {checked.value!r}")
    return f"https://zt.{checked.value}.sms.api.sinch.com"


def resolve_base_url(region: Region | str, *, oauth2: bool, override: str | None = None) -> str:
    """The base URL to call: ``override`` if given (without a trailing slash), else the region's.

    The region is still checked when an override is given, so a configuration that would fail
    against the real Sinch also fails against the simulator.
    """
    regional = oauth2_base_url(region) if oauth2 else sms_base_url(region)
    if override:
        return override.rstrip("/")
    return regional
