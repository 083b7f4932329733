"""API key format and hashing: pure functions; the randomness is passed in.

A key is ``sgw_`` followed by 43 URL-safe characters (32 random bytes). Its first 12
characters are its visible prefix, stored in clear to find the row; the key itself is stored
only as its SHA-256 digest. A fast digest is right here: the key is 256 random bits, not a
password, so there is nothing for a slow hash to protect against.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from enum import StrEnum

KEY_PREFIX = "sgw_"
PREFIX_LENGTH = 12
SECRET_BYTES = 32


def format_api_key(random_bytes: bytes) -> str:
    """The key text for ``random_bytes`` (at least 32 of them)."""
    if len(random_bytes) < SECRET_BYTES:
        raise ValueError(f"an API key needs at least {SECRET_BYTES} random bytes")
    return KEY_PREFIX + base64.urlsafe_b64encode(random_bytes).rstrip(b"=").decode("ascii")


def visible_prefix(key: str) -> str:
    return key[:PREFIX_LENGTH]


def hash_api_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def looks_like_api_key(presented: str) -> bool:
    """Cheap shape check before any database look-up."""
    return presented.startswith(KEY_PREFIX) and PREFIX_LENGTH < len(presented) <= 128


def key_matches(presented: str, stored_hash: bytes) -> bool:
    """Constant-time comparison of a presented key with a stored digest."""
    return hmac.compare_digest(hash_api_key(presented), stored_hash)


class Scope(StrEnum):
    """What a key may do. ``read``: every GET. ``send``: every call that changes something
    (send, cancel, replay a callback, add or lift an opt-out). ``admin``: all of that, and
    inbound messages and opt-outs of every tenant, including numbers assigned to none."""

    SEND = "send"
    READ = "read"
    ADMIN = "admin"


ALL_SCOPES: frozenset[Scope] = frozenset(Scope)
# A new key reads and sends for its own tenant; seeing other tenants is asked for explicitly.
DEFAULT_SCOPES: frozenset[Scope] = frozenset({Scope.SEND, Scope.READ})


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    """Scopes named in ``values`` (each may be a comma-separated list); ValueError names an
    unknown one."""
    scopes: set[Scope] = set()
    for value in values:
        for name in value.split(","):
            name = name.strip().lower()
            if not name:
                continue
            try:
                scopes.add(Scope(name))
            except ValueError:
                known = ", ".join(scope.value for scope in Scope)
                raise ValueError(f"{name!r} is not a scope; the scopes are {known}") from None
    if not scopes:
        raise ValueError("a key needs at least one scope")
    return frozenset(scopes)


def grants(scopes: Iterable[str], needed: Scope) -> bool:
    """Whether a key with ``scopes`` may do what needs ``needed`` (admin may do everything)."""
    held = set(scopes)
    return needed.value in held or Scope.ADMIN.value in held
