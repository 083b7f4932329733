from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsgateway.domain.api_keys import (
    format_api_key,
    hash_api_key,
    key_matches,
    looks_like_api_key,
    visible_prefix,
)


@given(st.binary(min_size=32, max_size=32))
def test_a_key_carries_its_prefix_and_only_its_own_hash_matches(random_bytes: bytes) -> None:
    key = format_api_key(random_bytes)
    assert key.startswith("sgw_")
    assert len(key) == 4 + 43
    assert looks_like_api_key(key)
    assert visible_prefix(key) == key[:12]
    assert key_matches(key, hash_api_key(key))
    assert not key_matches(key[:-1] + ("A" if key[-1] != "A" else "B"), hash_api_key(key))


def test_fewer_than_32_random_bytes_are_refused() -> None:
    with pytest.raises(ValueError, match="32"):
        format_api_key(b"\x00" * 31)


@pytest.mark.parametrize("presented", ["", "sgw_", "sgw_short", "Bearer sgw_x", "x" * 60])
def test_malformed_keys_are_refused_before_any_lookup(presented: str) -> None:
    assert not looks_like_api_key(presented)
