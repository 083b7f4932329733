"""Where status callbacks may go: the URL policy that keeps callers from aiming the gateway
at its own network (SSRF).

Pure: no resolution happens here. The rules:

- ``http`` or ``https`` only, with a host; no other scheme.
- A host written as an IP literal is refused when the address is not globally routable
  (private, loopback, link-local, shared, reserved, multicast, unspecified), unless private
  targets are allowed. An IPv6 form that carries an IPv4 address (mapped, compatible, NAT64,
  6to4) is judged as that IPv4 address; Teredo and RFC 8215's local-use NAT64 prefix are
  refused whatever they carry.
- ``localhost`` and names under ``.localhost`` are loopback by definition (RFC 6761).
- Any other host *name* passes here; the worker resolves it when it delivers and refuses the
  call if any resolved address is refused by ``is_refused_address`` (then it connects to an
  address it checked, so a name cannot be re-pointed between the check and the call).
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import Final
from urllib.parse import urlsplit

_SCHEMES: Final = frozenset({"http", "https"})


class TargetRefusal(StrEnum):
    """Why a callback URL is refused; stable codes for problem answers and attempt logs."""

    SCHEME = "callback_url_scheme"
    NO_HOST = "callback_url_host"
    PRIVATE = "callback_target_private"


def check_callback_url(url: str, *, allow_private: bool) -> TargetRefusal | None:
    """None if ``url`` may receive callbacks as far as can be told without resolving it."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        # Reading the port validates it (a non-numeric or out-of-range port raises).
        _ = parts.port
    except ValueError:
        return TargetRefusal.NO_HOST
    if parts.scheme.lower() not in _SCHEMES:
        return TargetRefusal.SCHEME
    if not host:
        return TargetRefusal.NO_HOST
    if allow_private:
        return None
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return TargetRefusal.PRIVATE
    address = _ip_literal(name)
    if address is not None and is_refused_address(address, allow_private=False):
        return TargetRefusal.PRIVATE
    return None


def is_refused_address(address: str, *, allow_private: bool) -> bool:
    """Whether a callback may not be sent to ``address`` (an IPv4 or IPv6 address string).

    Anything that is not a globally routable unicast address is refused unless allowed; a
    string that is not an address at all is refused.
    """
    if allow_private:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _LOCAL_NAT64:
            return True
        wrapped = _embedded_ipv4(ip)
        if wrapped is not None:
            # A translator or tunnel delivers to the IPv4 address inside: judge that one.
            ip = wrapped
    return not ip.is_global or ip.is_multicast


# RFC 8215's local-use NAT64 prefix: operators embed IPv4 at a prefix length of their own
# choosing, so nothing in it can be judged from outside, and no public receiver lives there.
_LOCAL_NAT64: Final = ipaddress.IPv6Network("64:ff9b:1::/48")
_WELL_KNOWN_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE: Final = ipaddress.IPv6Network("::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries: IPv4-mapped, IPv4-compatible, NAT64 (RFC
    6052's well-known prefix) or 6to4 (RFC 3056). Teredo (2001::/32, RFC 4380) needs no
    unwrapping: its prefix is not globally routable, so it is refused whatever it carries."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _WELL_KNOWN_NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def target_host(url: str) -> str:
    """``host[:port]`` of ``url``, lower-cased: what a worker's per-host cap counts by."""
    try:
        parts = urlsplit(url)
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError:
        # Never raised for a URL that passed check_callback_url; a key all the same.
        return url.lower()
    if ":" in host:
        host = f"[{host}]"
    return host if port is None else f"{host}:{port}"


def _ip_literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None
