"""Masking a number down to its country code, and which retention window applies."""

from __future__ import annotations

import json

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

from smsgateway.domain.retention import (
    RetentionWindow,
    is_masked,
    mask_number,
    mask_numbers_in_json,
    window_for,
)

CODES = sorted(str(code) for code in COUNTRY_CODE_TO_REGION_CODE)

e164 = st.builds(
    lambda code, rest: f"+{code}{rest}",
    st.sampled_from(CODES),
    st.text("0123456789", min_size=4, max_size=12),
).filter(lambda number: 8 <= len(number) <= 16)
"""E.164 numbers: 7 to 15 digits after the +."""


def test_country_calling_codes_are_prefix_free_so_one_alternative_matches() -> None:
    assert not [(a, b) for a in CODES for b in CODES if a != b and b.startswith(a)]


@given(e164)
def test_a_number_keeps_only_its_country_code(number: str) -> None:
    code = phonenumbers.parse(number, None).country_code if _parses(number) else None
    masked = mask_number(number)
    assert is_masked(masked)
    assert masked.startswith("+")
    assert len(masked) <= 5
    if code:
        assert masked == f"+{code}*"
    else:
        # A code no country has: its three digits, as many as any code can have.
        assert masked == number[:4] + "*"
    # Masking is idempotent: a masked number is left as it is.
    assert mask_number(masked) == masked


def _parses(number: str) -> bool:
    try:
        phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return False
    return True


def test_examples() -> None:
    assert mask_number("+46701234567") == "+46*"
    assert mask_number("46701234567") == "46*"
    assert mask_number("+15551234567") == "+1*"
    assert mask_number("+8001234567") == "+800*"
    assert mask_number("+6834002") == "+683*"
    assert mask_number("+9991234567") == "+999*"
    assert mask_number("not a number") == "not a number"


@given(st.lists(e164, min_size=1, max_size=5))
def test_every_number_in_a_json_document_is_masked_keys_included(numbers: list[str]) -> None:
    document = {
        "to": numbers,
        "refused": dict.fromkeys(numbers, "opted_out"),
        "batch_id": "01FC66621XXXXX119Z8PMV1QPQ",
        "operator": "24001",
        "at": "2026-12-03T10:00:00Z",
        "code": 401,
    }
    masked = json.loads(mask_numbers_in_json(json.dumps(document)))
    assert masked["to"] == [mask_number(number) for number in numbers]
    assert set(masked["refused"]) == {mask_number(number) for number in numbers}
    # Not numbers of people: ids, operator codes, timestamps and integers stay.
    assert {k: masked[k] for k in ("batch_id", "operator", "at", "code")} == {
        k: document[k] for k in ("batch_id", "operator", "at", "code")
    }


def test_a_tenant_without_its_own_window_has_the_gateways() -> None:
    default = RetentionWindow(30, 365)
    own = RetentionWindow(None, 7)
    assert window_for("acme", default, {"acme": own}) == own
    assert window_for("other", default, {"acme": own}) == default
    assert window_for(None, default, {"acme": own}) == default


@pytest.mark.parametrize("days", [0, -1, 36501])
def test_a_window_outside_one_day_to_a_century_is_refused(days: int) -> None:
    with pytest.raises(ValueError, match="between 1 and 36500"):
        RetentionWindow(days, None)
    with pytest.raises(ValueError, match="between 1 and 36500"):
        RetentionWindow(None, days)
