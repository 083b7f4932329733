"""Whether a URL can be the gateway's public address, the one Sinch posts its callbacks to.

Pure: no name is resolved. Sinch calls from the internet, so the URL must be ``http(s)`` with
a host, and that host must not be one only a private network reaches: an IP literal that is
not globally routable (private, loopback, link-local, shared, reserved, ...), ``localhost``
and names under ``.localhost`` (RFC 6761), or a ``.local`` name (mDNS, RFC 6762). A private
host can be allowed for a gateway Sinch reaches through a private link; a wrong scheme or a
missing host never can.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from urllib.parse import urlsplit

from smsgateway.domain.callback_targets import is_refused_address


class PublicUrlProblem(StrEnum):
    """Why a URL cannot be the public base URL."""

    SCHEME = "not_http"
    NO_HOST = "no_host"
    PRIVATE = "private_host"


def check_public_url(url: str, *, allow_private: bool = False) -> PublicUrlProblem | None:
    """None if Sinch could reach ``url`` as far as can be told without resolving it."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        _ = parts.port  # reading it validates it
    except ValueError:
        return PublicUrlProblem.NO_HOST
    if parts.scheme.lower() not in ("http", "https"):
        return PublicUrlProblem.SCHEME
    if not host:
        return PublicUrlProblem.NO_HOST
    if allow_private or not is_private_host(host):
        return None
    return PublicUrlProblem.PRIVATE


def is_private_host(host: str) -> bool:
    """Whether ``host`` (a name or an IP literal) is reachable only from a private network."""
    name = host.rstrip(".").lower()
    if name in ("localhost", "local") or name.endswith((".localhost", ".local")):
        return True
    try:
        address = str(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        return False
    return is_refused_address(address, allow_private=False)
