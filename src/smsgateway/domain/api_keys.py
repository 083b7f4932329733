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
