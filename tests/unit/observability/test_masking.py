from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsgateway.observability.masking import mask_phone, mask_phones_in, redact


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+15551234567", "+1555***4567"),
        ("+46701234567", "+4670***4567"),
        ("33662162466", "3366***2466"),
        ("+1234567", "+12***67"),
    ],
)
def test_mask_phone_keeps_prefix_and_last_digits(number: str, masked: str) -> None:
    assert mask_phone(number) == masked


@given(
    digits=st.text(alphabet="0123456789", min_size=8, max_size=15).filter(lambda d: d[0] != "0"),
    plus=st.booleans(),
    before=st.text(alphabet=st.characters(blacklist_categories=("Nd",)), max_size=20),
    after=st.text(alphabet=st.characters(blacklist_categories=("Nd",)), max_size=20),
)
def test_no_whole_number_survives_masking(digits: str, plus: bool, before: str, after: str) -> None:
    number = ("+" if plus else "") + digits
    masked = mask_phones_in(f"{before} {number} {after}")
    assert digits not in masked
    assert "***" in masked


def test_short_numbers_such_as_counts_and_statuses_are_left_alone() -> None:
    assert mask_phones_in("status 404 after 1234567 ms") == "status 404 after 1234567 ms"


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer abc.def.ghi",
        '{"api_key": "sgw_live_123456"}',
        "x-api-key=topsecretvalue",
        "postgresql://user:hunter2@db:5432/app",
        "token=abcdef123",
    ],
)
def test_redact_hides_secrets(text: str) -> None:
    redacted = redact(text)
    for secret in ("abc.def.ghi", "sgw_live_123456", "topsecretvalue", "hunter2", "abcdef123"):
        assert secret not in redacted


def _redact_unguarded(text: str) -> str:
    """``redact`` as it was before its guards: every substitution on every string."""
    from smsgateway.observability import masking

    text = masking._URL_PASSWORD_PATTERN.sub(r"\1***\2", text)
    text = masking.mask_webhook_secrets(text)
    text = masking._SECRET_FIELD_PATTERN.sub(r"\1\2***", text)
    return masking.mask_phones_in(text)


_FRAGMENTS = st.sampled_from(
    [
        "token",
        "TOKEN",
        "Api-Key",
        "x-api-key",
        "apikey",
        "Authorization",
        "secret",
        "ſecret",
        "PASSWORD",
        "toKen",
        "ı",
        "İ",
        "K",
        "=",
        ": ",
        '"',
        "'",
        "bearer ",
        "https://",
        "user:pw@host",
        "/webhooks/sinch/",
        "/webhooks/sinch/inbound/",
        "A" * 24,
        "+",
        "12345678",
        "4670123456789",
        " ",
        "/",
        "@",
    ]
)


@given(st.lists(st.one_of(_FRAGMENTS, st.text(max_size=6)), max_size=12).map("".join))
def test_the_guards_change_no_answer(text: str) -> None:
    assert redact(text) == _redact_unguarded(text)


_ALPHANUMERIC = st.characters(categories=("L", "N"))


@given(
    st.lists(
        st.one_of(
            st.text(_ALPHANUMERIC, max_size=8), st.sampled_from(["12345678", "4670123456789"])
        ),
        max_size=6,
    ).map("".join)
)
def test_letters_and_digits_alone_are_masked_only_when_they_are_a_number(text: str) -> None:
    assert redact(text) == _redact_unguarded(text)
