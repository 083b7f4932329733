"""HMAC signing of callbacks, as Sinch does it when signing is switched on for an account.

The signed string is the raw body, `.`, the nonce, `.`, the timestamp (Unix seconds); the
signature is base64 of HMAC-SHA256 keyed with the secret's UTF-8 bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

ALGORITHM = "HmacSHA256"


def sign(body: bytes, *, secret: str, nonce: str, timestamp: str) -> str:
    message = b".".join((body, nonce.encode(), timestamp.encode()))
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_headers(body: bytes, *, secret: str, nonce: str, timestamp: str) -> dict[str, str]:
    """The four `x-sinch-webhook-signature*` headers for one callback attempt."""
    return {
        "x-sinch-webhook-signature": sign(body, secret=secret, nonce=nonce, timestamp=timestamp),
        "x-sinch-webhook-signature-nonce": nonce,
        "x-sinch-webhook-signature-timestamp": timestamp,
        "x-sinch-webhook-signature-algorithm": ALGORITHM,
    }
