"""Message ids: UUIDs whose first 48 bits are the creation time in milliseconds (as UUIDv7).

Time-ordered ids keep inserts at the end of the primary-key index and make ids sortable.
"""

from __future__ import annotations

import uuid

_VERSION_7 = 0x7000
_VARIANT_RFC_4122 = 0x8000000000000000


def time_ordered_id(unix_ms: int, random_bytes: bytes) -> uuid.UUID:
    """A version-7 UUID from a millisecond timestamp and at least 10 random bytes."""
    if len(random_bytes) < 10:
        raise ValueError("a time-ordered id needs at least 10 random bytes")
    rand_a = int.from_bytes(random_bytes[:2], "big") & 0x0FFF
    rand_b = int.from_bytes(random_bytes[2:10], "big") & 0x3FFFFFFFFFFFFFFF
    value = (
        ((unix_ms & 0xFFFFFFFFFFFF) << 80)
        | ((_VERSION_7 | rand_a) << 64)
        | (_VARIANT_RFC_4122 | rand_b)
    )
    return uuid.UUID(int=value)
