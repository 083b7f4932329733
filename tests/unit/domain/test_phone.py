"""Phone numbers and sender ids, with numbers libphonenumber itself calls valid.

Note: most +1 555 numbers are INVALID in libphonenumber; the valid US example is +1 201 555 0123.
"""

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType

from smsgateway.domain.errors import InvalidPhoneNumber, InvalidRegion, InvalidSender
from smsgateway.domain.phone import (
    NumberType,
    PhoneNumber,
    PhoneRefusal,
    SenderKind,
    parse_phone_number,
    parse_region,
    parse_sender,
)

SE_MOBILE = "+46701234567"  # libphonenumber's example mobile for SE
SE_FIXED = "+468123456"  # its example fixed line for SE (Stockholm)
US_EITHER = "+12015550123"  # its example for US: fixed_line_or_mobile


def example(region: str, number_type: int) -> str:
    number = phonenumbers.example_number_for_type(region, number_type)
    assert number is not None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        (SE_MOBILE, None, SE_MOBILE),
        ("+46 70 123 45 67", None, SE_MOBILE),
        ("0701 234 567", "SE", SE_MOBILE),
        ("070-123 45 67", "SE", SE_MOBILE),
        ("00 46 70 123 45 67", "SE", SE_MOBILE),  # international prefix dialled from Sweden
        ("(201) 555-0123", "US", US_EITHER),
        ("201.555.0123", "US", US_EITHER),
        ("201-555-0123", "US", US_EITHER),
        ("+1 201-555-0123", "SE", US_EITHER),  # a leading + wins over the region
        ("  +12015550123  ", None, US_EITHER),
        (
            "\uff0b\uff14\uff16\uff17\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17",
            None,
            SE_MOBILE,
        ),
    ],
)
def test_accepted_forms_normalise_to_e164(raw: str, region: str | None, e164: str) -> None:
    assert parse_phone_number(raw, region=region).e164 == e164


def test_a_number_reports_region_country_code_and_type() -> None:
    assert parse_phone_number(SE_MOBILE) == PhoneNumber(SE_MOBILE, "SE", 46, NumberType.MOBILE)
    canadian = parse_phone_number("(416) 555-0123", region="US")  # NANP: the number is Canadian
    assert (canadian.e164, canadian.region, canadian.country_code) == ("+14165550123", "CA", 1)
    assert parse_phone_number("+80012345678").region == "001"  # non-geographic freephone


@pytest.mark.parametrize(
    ("region", "phonenumbers_type", "number_type"),
    [
        ("SE", PhoneNumberType.MOBILE, NumberType.MOBILE),
        ("SE", PhoneNumberType.FIXED_LINE, NumberType.FIXED_LINE),
        ("US", PhoneNumberType.FIXED_LINE_OR_MOBILE, NumberType.FIXED_LINE_OR_MOBILE),
        ("US", PhoneNumberType.TOLL_FREE, NumberType.TOLL_FREE),
        ("GB", PhoneNumberType.VOIP, NumberType.VOIP),
        ("GB", PhoneNumberType.PREMIUM_RATE, NumberType.PREMIUM_RATE),
        ("GB", PhoneNumberType.PAGER, NumberType.PAGER),
        ("GB", PhoneNumberType.PERSONAL_NUMBER, NumberType.PERSONAL_NUMBER),
        ("GB", PhoneNumberType.UAN, NumberType.UAN),
        ("DE", PhoneNumberType.MOBILE, NumberType.MOBILE),
    ],
)
def test_number_types(region: str, phonenumbers_type: int, number_type: NumberType) -> None:
    number = parse_phone_number(example(region, phonenumbers_type))
    assert (number.number_type, number.region) == (number_type, region)


@pytest.mark.parametrize(
    ("raw", "region", "reason"),
    [
        ("hello", None, PhoneRefusal.NOT_A_NUMBER),
        ("", None, PhoneRefusal.NOT_A_NUMBER),
        ("+-()", None, PhoneRefusal.NOT_A_NUMBER),
        ("+1 800 FLOWERS", None, PhoneRefusal.NOT_A_NUMBER),  # no vanity letters
        ("+1 201 555 0123 ext 5", None, PhoneRefusal.NOT_A_NUMBER),  # no extensions
        ("+46#701234567", None, PhoneRefusal.NOT_A_NUMBER),
        ("2015550123", None, PhoneRefusal.MISSING_COUNTRY_CODE),
        ("0701234567", None, PhoneRefusal.MISSING_COUNTRY_CODE),
        ("+999123456", None, PhoneRefusal.INVALID_COUNTRY_CODE),
        ("+1", None, PhoneRefusal.TOO_SHORT),
        ("+12", None, PhoneRefusal.TOO_SHORT),
        ("+4670", None, PhoneRefusal.TOO_SHORT),
        ("+46 1", None, PhoneRefusal.TOO_SHORT),
        ("253 0000", "US", PhoneRefusal.TOO_SHORT),  # dialable only within its area code
        ("+467777777777777", None, PhoneRefusal.TOO_LONG),
        ("+12345678901234567890", None, PhoneRefusal.TOO_LONG),
        ("+4677777777777", None, PhoneRefusal.INVALID_LENGTH),
        ("0701234567", "US", PhoneRefusal.INVALID_FOR_REGION),
        ("(555) 123-4567", "US", PhoneRefusal.INVALID_FOR_REGION),
        ("+15551234567", None, PhoneRefusal.INVALID_NUMBER),  # 555 exchange: fictional
        ("+19995550123", None, PhoneRefusal.INVALID_NUMBER),
        ("+4670123456", None, PhoneRefusal.INVALID_NUMBER),  # possible length, no such range
    ],
)
def test_refusals_carry_a_reason_code(raw: str, region: str | None, reason: PhoneRefusal) -> None:
    with pytest.raises(InvalidPhoneNumber) as caught:
        parse_phone_number(raw, region=region, field="to[3]")
    assert caught.value.code == reason.value
    assert caught.value.field == "to[3]"
    assert caught.value.message.startswith("The number ")
    assert not raw.strip() or raw.strip() not in caught.value.message  # no number in logs


def test_fixed_line_is_refused_only_when_asked_and_only_when_certain() -> None:
    assert parse_phone_number(SE_FIXED).number_type is NumberType.FIXED_LINE
    with pytest.raises(InvalidPhoneNumber) as caught:
        parse_phone_number(SE_FIXED, refuse_fixed_line=True)
    assert caught.value.code == "cannot_receive_sms"
    # libphonenumber cannot tell US landlines from mobiles: such numbers are kept.
    either = parse_phone_number(US_EITHER, refuse_fixed_line=True)
    assert either.number_type is NumberType.FIXED_LINE_OR_MOBILE
    assert parse_phone_number(SE_MOBILE, refuse_fixed_line=True).e164 == SE_MOBILE


def test_region_is_normalised_and_checked() -> None:
    assert parse_region(" se ") == "SE"
    assert parse_phone_number("0701 234 567", region="se").e164 == SE_MOBILE
    with pytest.raises(InvalidRegion) as caught:
        parse_region("XX")
    assert (caught.value.code, caught.value.field) == ("invalid_region", "region")
    with pytest.raises(InvalidRegion):
        parse_phone_number("0701 234 567", region="XX")


@pytest.mark.parametrize(
    ("raw", "value", "kind"),
    [
        ("MyShop", "MyShop", SenderKind.ALPHANUMERIC),
        ("My Shop 24", "My Shop 24", SenderKind.ALPHANUMERIC),
        ("ElevenChars", "ElevenChars", SenderKind.ALPHANUMERIC),
        (" Shop ", "Shop", SenderKind.ALPHANUMERIC),
        ("A", "A", SenderKind.ALPHANUMERIC),
        ("123", "123", SenderKind.SHORT_CODE),
        ("12345678", "12345678", SenderKind.SHORT_CODE),
        (SE_MOBILE, SE_MOBILE, SenderKind.NUMBER),
        ("+46 8 12 34 56", SE_FIXED, SenderKind.NUMBER),  # a landline may be SMS-enabled
    ],
)
def test_sender_kinds(raw: str, value: str, kind: SenderKind) -> None:
    sender = parse_sender(raw)
    assert (sender.value, sender.kind) == (value, kind)
    assert (sender.number is not None) is (kind is SenderKind.NUMBER)


def test_a_national_sender_number_uses_the_region() -> None:
    sender = parse_sender("070-123 45 67", region="SE")
    assert sender.kind is SenderKind.NUMBER
    assert sender.number == PhoneNumber(SE_MOBILE, "SE", 46, NumberType.MOBILE)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "sender_empty"),
        ("   ", "sender_empty"),
        ("TwelveChars1", "sender_too_long"),
        ("Shop-24", "sender_invalid_characters"),
        ("Caf\u00e9", "sender_invalid_characters"),
        ("shop@example", "sender_invalid_characters"),
    ],
)
def test_sender_refusals(raw: str, code: str) -> None:
    with pytest.raises(InvalidSender) as caught:
        parse_sender(raw)
    assert (caught.value.code, caught.value.field) == (code, "from")


def test_short_codes_can_be_refused() -> None:
    with pytest.raises(InvalidSender) as caught:
        parse_sender("12345", allow_short_code=False)
    assert caught.value.code == "short_code_not_allowed"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("+15551234567", "invalid_number"),
        ("123456789", "missing_country_code"),  # nine digits: too long for a short code
        ("12", "missing_country_code"),
    ],
)
def test_a_numeric_sender_gets_the_phone_checks(raw: str, code: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as caught:
        parse_sender(raw)
    assert (caught.value.code, caught.value.field) == (code, "from")
