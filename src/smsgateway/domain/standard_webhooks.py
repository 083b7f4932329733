"""Signing our callbacks to callers the Standard Webhooks way (standardwebhooks.com, spec 1.0.0).

Pure: the timestamp is an argument, and nothing keeps state.

Every callback carries three headers, which receivers verify with the ``standardwebhooks``
library of their language (or by hand, as below)::

    webhook-id: <the event's id: the same on every attempt and replay; dedupe by it>
    webhook-timestamp: <Unix seconds when this attempt was signed>
    webhook-signature: v1,<base64 HMAC-SHA256> [v1,<base64> ...]

A signing secret is ``whsec_`` followed by the standard base64 (with padding) of 24 to 64
random bytes: the form every ``standardwebhooks`` library takes as is. The HMAC key is the
decoded bytes, not the text. The signed content is ``<webhook-id>.<webhook-timestamp>.<body>``
(the body's raw bytes). With several secrets configured (a rotation), the header carries one
``v1`` signature per secret, space-separated, so a receiver holding any of them verifies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

WEBHOOK_ID_HEADER: Final = "webhook-id"
WEBHOOK_TIMESTAMP_HEADER: Final = "webhook-timestamp"
WEBHOOK_SIGNATURE_HEADER: Final = "webhook-signature"

HEADER_DESCRIPTIONS: Final[Mapping[str, str]] = {
    WEBHOOK_ID_HEADER: "The event's id, the same on every attempt and replay of the event "
    "(and equal to the body's `id`): use it to process each event once.",
    WEBHOOK_TIMESTAMP_HEADER: "When this attempt was signed, in Unix seconds; refuse one far "
    "from your clock (the Standard Webhooks libraries allow 5 minutes).",
    WEBHOOK_SIGNATURE_HEADER: "Space-separated `v1,<base64 HMAC-SHA256>` signatures of "
    "`<webhook-id>.<webhook-timestamp>.<raw body>`, one per signing secret in use (two while "
    "a secret is rotated); verify with any Standard Webhooks library.",
}
"""What each header means, for the OpenAPI description of our callbacks."""

SECRET_PREFIX: Final = "whsec_"
# The spec's bounds for a symmetric secret: at least 192 bits, at most 512.
MIN_SECRET_BYTES: Final = 24
MAX_SECRET_BYTES: Final = 64
SIGNATURE_VERSION: Final = "v1"

# The spec: the id and timestamp must not contain "." (it separates the signed parts). Our ids
# are UUIDs; visible ASCII without "." keeps every library's header parsing unambiguous.
_MESSAGE_ID: Final = re.compile(r"[\x21-\x2d\x2f-\x7e]{1,256}")


@dataclass(frozen=True, slots=True)
class SigningSecret:
    """One callback signing secret: the HMAC key bytes. Its repr never shows them."""

    key: bytes

    def __post_init__(self) -> None:
        if not MIN_SECRET_BYTES <= len(self.key) <= MAX_SECRET_BYTES:
            raise ValueError(
                f"a signing secret must be {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes"
            )

    def __repr__(self) -> str:
        return "SigningSecret(<redacted>)"

    @classmethod
    def parse(cls, text: str) -> SigningSecret:
        """The secret serialised as ``whsec_<base64>``; ValueError says what is wrong with it
        (never quoting it)."""
        if not text.startswith(SECRET_PREFIX):
            raise ValueError(f"a signing secret starts with {SECRET_PREFIX}")
        encoded = text.removeprefix(SECRET_PREFIX)
        try:
            key = base64.b64decode(encoded.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error):
            key = b""
        # Only the canonical form: a lenient decoder (Python's library adds padding, Go's does
        # not) must read the same bytes we sign with.
        if not key or base64.b64encode(key).decode("ascii") != encoded:
            raise ValueError(
                f"a signing secret is {SECRET_PREFIX} followed by standard base64 with padding"
            )
        if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
            raise ValueError(
                f"a signing secret encodes {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, "
                f"not {len(key)}"
            )
        return cls(key)

    def serialise(self) -> str:
        """``whsec_<base64>``: the form to hand to receivers and to put in settings."""
        return SECRET_PREFIX + base64.b64encode(self.key).decode("ascii")


def sign_webhook(
    message_id: str, timestamp: int, body: bytes, secrets: Sequence[SigningSecret]
) -> str:
    """The ``webhook-signature`` value: ``v1,<base64>`` per secret, space-separated, in the
    order given."""
    if not secrets:
        raise ValueError("at least one signing secret is required")
    if not _MESSAGE_ID.fullmatch(message_id):
        raise ValueError("a webhook id is 1 to 256 visible ASCII characters without '.'")
    if timestamp < 0:
        raise ValueError("timestamp must not be negative")
    signed = f"{message_id}.{timestamp}.".encode("ascii") + body
    return " ".join(
        f"{SIGNATURE_VERSION},"
        + base64.b64encode(hmac.digest(secret.key, signed, hashlib.sha256)).decode("ascii")
        for secret in secrets
    )


def webhook_headers(
    message_id: str, timestamp: int, body: bytes, secrets: Sequence[SigningSecret]
) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body`` sent as ``message_id`` at
    ``timestamp`` (Unix seconds)."""
    return {
        WEBHOOK_ID_HEADER: message_id,
        WEBHOOK_TIMESTAMP_HEADER: str(timestamp),
        WEBHOOK_SIGNATURE_HEADER: sign_webhook(message_id, timestamp, body, secrets),
    }
