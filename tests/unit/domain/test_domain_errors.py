"""Error codes are public API: a renamed code breaks callers, so they are pinned here."""

import pytest

from smsgateway.domain import errors
from smsgateway.domain.phone import PhoneRefusal, SenderRefusal


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.EmptyBody(), "empty_body"),
        (errors.InvalidCharacter(position=3, character="\t"), "invalid_character"),
        (errors.BodyTooLong(characters=2001, max_characters=2000), "body_too_long"),
        (errors.TooManySegments(segments=4, max_segments=3), "too_many_segments"),
        (errors.NoRecipients(), "no_recipients"),
        (errors.TooManyRecipients(count=1001, max_recipients=1000), "too_many_recipients"),
        (errors.RecipientsRefused([], accepted=0), "invalid_recipients"),
        (errors.InvalidRegion("bad"), "invalid_region"),
        (errors.PriceTableError("bad"), "invalid_price_table"),
        (
            errors.ParametersRefused(
                [
                    errors.ParameterRefusal("parameters.a.x", "invalid_phone_number", "bad"),
                    errors.ParameterRefusal("parameters.a.y", "parameter_recipient_unknown", "?"),
                ]
            ),
            "invalid_parameters",
        ),
    ],
)
def test_codes(error: errors.DomainError, code: str) -> None:
    assert error.code == code
    assert isinstance(error, errors.DomainError)
    assert error.message == str(error)


def test_reason_codes() -> None:
    assert {reason.value for reason in PhoneRefusal} == {
        "not_a_number",
        "missing_country_code",
        "invalid_country_code",
        "too_short",
        "too_long",
        "invalid_length",
        "invalid_for_region",
        "invalid_number",
        "cannot_receive_sms",
    }
    assert {reason.value for reason in SenderRefusal} == {
        "sender_empty",
        "sender_too_long",
        "sender_invalid_characters",
        "short_code_not_allowed",
    }


def test_an_error_carries_no_http_status() -> None:
    error = errors.TooManySegments(segments=4, max_segments=3)
    assert error.field == "body"
    assert not any("status" in name for name in vars(error))
