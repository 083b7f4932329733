"""prepare_body: validation, smart encoding and limits in one call."""

import pytest

from smsgateway.domain.compose import MAX_BODY_CHARACTERS, prepare_body
from smsgateway.domain.errors import BodyTooLong, EmptyBody, InvalidCharacter, TooManySegments
from smsgateway.domain.segments import Encoding
from smsgateway.domain.smart_encoding import Replacement

CURLY = "\u2019"  # RIGHT SINGLE QUOTATION MARK


def test_smart_encoding_turns_a_three_part_ucs2_text_into_one_gsm7_part() -> None:
    body = ("It" + CURLY + "s ") * 32  # 160 characters
    plain = prepare_body(body, smart_encoding=False, max_segments=10)
    smart = prepare_body(body, smart_encoding=True, max_segments=10)

    assert (plain.encoding, plain.segments, plain.text) == (Encoding.UCS2, 3, body)
    assert plain.replacements == ()
    assert (smart.encoding, smart.segments) == (Encoding.GSM7, 1)
    assert smart.text == "It's " * 32
    assert smart.original == body
    assert len(smart.replacements) == 32
    assert smart.replacements[0].position == 2


def test_smart_encoding_leaves_a_text_that_stays_ucs2_alone() -> None:
    body = "\u041f\u0440\u0438\u0432\u0435\u0442" + CURLY
    prepared = prepare_body(body, smart_encoding=True, max_segments=1)
    assert prepared.text == body
    assert prepared.encoding is Encoding.UCS2
    assert prepared.replacements == ()


def test_too_many_segments_reports_what_it_would_have_cost() -> None:
    with pytest.raises(TooManySegments) as caught:
        prepare_body("a" * 307, smart_encoding=False, max_segments=2)
    assert (caught.value.code, caught.value.segments, caught.value.max_segments) == (
        "too_many_segments",
        3,
        2,
    )
    assert prepare_body("a" * 306, smart_encoding=False, max_segments=2).segments == 2


def test_the_segment_limit_applies_after_smart_encoding() -> None:
    body = "a" * 150 + CURLY  # UCS-2: 3 parts; smart-encoded GSM-7: 1 part
    assert prepare_body(body, smart_encoding=True, max_segments=1).segments == 1
    with pytest.raises(TooManySegments):
        prepare_body(body, smart_encoding=False, max_segments=1)


def test_body_longer_than_sinch_accepts_is_refused() -> None:
    assert prepare_body("a" * MAX_BODY_CHARACTERS, smart_encoding=False, max_segments=20)
    with pytest.raises(BodyTooLong) as caught:
        prepare_body("a" * (MAX_BODY_CHARACTERS + 1), smart_encoding=False, max_segments=20)
    assert (caught.value.code, caught.value.characters) == ("body_too_long", 2001)


def test_a_body_of_invisible_characters_only_is_empty_after_smart_encoding() -> None:
    with pytest.raises(EmptyBody):
        prepare_body("\u200b\u200b", smart_encoding=True, max_segments=1)


def test_unsendable_characters_are_refused_before_smart_encoding() -> None:
    with pytest.raises(InvalidCharacter):
        prepare_body("a\x07b" + CURLY, smart_encoding=True, max_segments=1)


def test_a_tab_is_sent_as_ucs2_without_smart_encoding() -> None:
    prepared = prepare_body("Name:\tAnn", smart_encoding=False, max_segments=1)
    assert (prepared.text, prepared.encoding) == ("Name:\tAnn", Encoding.UCS2)
    assert prepared.replacements == ()


def test_smart_encoding_turns_a_tab_into_a_space_and_reports_it() -> None:
    prepared = prepare_body("Name:\tAnn" + CURLY, smart_encoding=True, max_segments=1)
    assert prepared.encoding is Encoding.GSM7
    assert prepared.text.startswith("Name: Ann")
    assert prepared.replacements[0] == Replacement(5, "\t", " ")


def test_a_tab_stays_when_the_rest_needs_ucs2_anyway() -> None:
    prepared = prepare_body("\u041f\t\u0440", smart_encoding=True, max_segments=1)
    assert (prepared.text, prepared.encoding) == ("\u041f\t\u0440", Encoding.UCS2)
    assert prepared.replacements == ()


def test_max_segments_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_segments"):
        prepare_body("hi", smart_encoding=False, max_segments=0)
