"""normalise_address: what Sinch writes in a callback's from/to, in the form the gateway stores."""

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsgateway.domain.phone import normalise_address


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("11203453453", "+11203453453"),  # Sinch's documented example, without '+'
        ("+11203453453", "+11203453453"),
        (" 15551230001 ", "+15551230001"),
        ("+46 70 123 45 67", "+46701234567"),
        ("4712345678", "+4712345678"),
        ("6834002", "+6834002"),  # Niue: a valid number with 7 digits
        ("12345", "12345"),  # a short code
        ("72345", "72345"),
        ("12345678", "12345678"),
        ("ACME", "ACME"),  # an alphanumeric id
        ("Sinch Co", "Sinch Co"),
        ("0701234567", "0701234567"),  # national form: not ours to guess
        ("12", "12"),
        ("", ""),
        ("1234567890123456", "1234567890123456"),  # longer than E.164 allows
    ],
)
def test_examples(raw: str, stored: str) -> None:
    assert normalise_address(raw) == stored


@st.composite
def valid_numbers(draw: st.DrawFn) -> str:
    region = draw(st.sampled_from(["US", "SE", "GB", "DE", "FR", "BR", "IN", "AU", "NU", "SH"]))
    kind = draw(
        st.sampled_from(
            [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]
        )
    )
    example = phonenumbers.example_number_for_type(region, kind)
    assert example is not None
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)


@given(valid_numbers())
def test_a_valid_number_is_e164_with_or_without_its_plus(e164: str) -> None:
    assert normalise_address(e164) == e164
    assert normalise_address(e164.removeprefix("+")) == e164


@given(st.from_regex(r"[1-9][0-9]{2,4}", fullmatch=True))
def test_a_short_code_of_up_to_five_digits_is_kept_as_given(code: str) -> None:
    # No number has 3 to 5 digits, so these are short codes whatever they hold.
    assert normalise_address(code) == code


@given(st.text(max_size=20))
def test_normalising_twice_changes_nothing(raw: str) -> None:
    once = normalise_address(raw)
    assert normalise_address(once) == once


@given(st.from_regex(r"[A-Za-z][A-Za-z0-9 ]{0,10}", fullmatch=True))
def test_an_alphanumeric_id_is_kept_as_given(sender: str) -> None:
    assert normalise_address(sender) == sender.strip()
