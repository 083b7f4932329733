"""Batch, inbound and nonce ids shaped like Sinch's: 26 characters of uppercase Crockford base32.

Like a ULID: 48 bits of milliseconds since the epoch, then 80 random bits, so ids sort by time.
"""

from __future__ import annotations

import random
import time

CROCKFORD_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ID_LENGTH = 26

_random = random.SystemRandom()


def new_id(now: float | None = None) -> str:
    """A fresh 26-character id whose prefix encodes `now` (seconds since the epoch)."""
    millis = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    value = (millis << 80) | _random.getrandbits(80)
    chars = []
    for _ in range(ID_LENGTH):
        chars.append(CROCKFORD_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))
