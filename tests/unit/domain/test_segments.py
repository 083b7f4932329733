"""Segment counts at every boundary, and the refusals of unsendable bodies."""

import pytest

from smsgateway.domain.errors import EmptyBody, InvalidCharacter
from smsgateway.domain.segments import Encoding, classify, count_segments, validate_body

CYRILLIC = "\u044f"  # я: in the BMP, not in GSM 03.38, one UTF-16 code unit
EMOJI = "\U0001f600"  # 😀: outside the BMP, two UTF-16 code units
EURO = "\u20ac"  # €: GSM-7 extension table, two septets


@pytest.mark.parametrize(
    ("septets", "segments"),
    [(1, 1), (159, 1), (160, 1), (161, 2), (305, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm7_boundaries(septets: int, segments: int) -> None:
    result = count_segments("a" * septets)
    assert (result.encoding, result.segments, result.units) == (Encoding.GSM7, segments, septets)
    assert result.characters == septets


@pytest.mark.parametrize(
    ("units", "segments"),
    [(1, 1), (69, 1), (70, 1), (71, 2), (133, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_ucs2_boundaries(units: int, segments: int) -> None:
    result = count_segments(CYRILLIC * units)
    assert (result.encoding, result.segments, result.units) == (Encoding.UCS2, segments, units)


@pytest.mark.parametrize(
    ("text", "units", "segments"),
    [
        (EURO * 80, 160, 1),  # extension characters count two septets each
        (EURO * 80 + "a", 161, 2),
        (EMOJI * 35, 70, 1),  # characters outside the BMP count two code units each
        (EMOJI * 35 + CYRILLIC, 71, 2),
        ("a" * 159 + "\f", 161, 2),  # form feed is in the extension table
    ],
)
def test_double_unit_characters_at_the_single_part_limit(
    text: str, units: int, segments: int
) -> None:
    result = count_segments(text)
    assert (result.units, result.segments) == (units, segments)


@pytest.mark.parametrize(
    ("septets_before", "first_part_septets"),
    [
        (151, 153),  # the escape takes septets 152-153: it fits the first part exactly
        (152, 152),  # septets 153-154 would straddle the boundary: it moves to the second part
        (153, 153),  # septets 154-155: already in the second part
    ],
)
def test_extension_character_at_the_first_part_boundary(
    septets_before: int, first_part_septets: int
) -> None:
    result = count_segments("a" * septets_before + EURO + "a" * 20)
    first, second = result.split_parts()
    assert len(first) + (1 if EURO in first else 0) == first_part_septets
    assert (EURO in first) is (septets_before < 152)
    assert (EURO in second) is (septets_before >= 152)


def test_a_straddling_escape_costs_a_part_the_septet_total_does_not_show() -> None:
    # 306 septets would fit two parts of 153, but the euro at septets 153-154 moves, leaving
    # 152 + 153 and one septet for a third part.
    result = count_segments("a" * 152 + EURO + "a" * 152)
    assert result.units == 306
    assert result.segments == 3
    assert [len(part) for part in result.split_parts()] == [152, 152, 1]


@pytest.mark.parametrize(
    ("units_before", "emoji_in_first"),
    [(65, True), (66, False), (67, False)],  # the emoji at units 67-68 straddles, so it moves
)
def test_emoji_at_the_first_part_boundary(units_before: int, emoji_in_first: bool) -> None:
    result = count_segments(CYRILLIC * units_before + EMOJI + CYRILLIC * 20)
    first, second = result.split_parts()
    assert (EMOJI in first) is emoji_in_first
    assert (EMOJI in second) is not emoji_in_first


def test_a_straddling_surrogate_pair_costs_a_part_the_unit_total_does_not_show() -> None:
    result = count_segments(CYRILLIC * 66 + EMOJI + CYRILLIC * 66)
    assert result.units == 134
    assert result.segments == 3
    assert [len(part) for part in result.split_parts()] == [66, 66, 1]


def test_one_non_gsm_character_makes_the_whole_message_ucs2() -> None:
    gsm = count_segments("a" * 160)
    mixed = count_segments("a" * 159 + CYRILLIC)
    assert (gsm.encoding, gsm.segments) == (Encoding.GSM7, 1)
    assert (mixed.encoding, mixed.segments, mixed.units) == (Encoding.UCS2, 3, 160)


def test_characters_are_code_points_not_graphemes() -> None:
    thumbs_up_medium_skin = "\U0001f44d\U0001f3fd"
    result = count_segments(thumbs_up_medium_skin)
    assert (result.characters, result.units) == (2, 4)


def test_units_per_part_depends_on_the_part_count() -> None:
    assert count_segments("a" * 160).units_per_part == 160
    assert count_segments("a" * 161).units_per_part == 153
    assert count_segments(CYRILLIC).units_per_part == 70
    assert count_segments(CYRILLIC * 71).units_per_part == 67


def test_single_part_splits_into_itself() -> None:
    assert count_segments("hello").split_parts() == ("hello",)


@pytest.mark.parametrize(
    ("text", "encoding"),
    [("hello", Encoding.GSM7), ("5" + EURO, Encoding.GSM7), ("caf\u00e9", Encoding.GSM7),
     ("gar\u00e7on", Encoding.UCS2), (EMOJI, Encoding.UCS2)],
)  # fmt: skip
def test_classify(text: str, encoding: Encoding) -> None:
    assert classify(text) is encoding
    assert str(encoding) in {"GSM-7", "UCS-2"}


@pytest.mark.parametrize("text", ["", " ", "\n\r\n", "\u00a0\u2003", "\f"])
def test_empty_or_whitespace_only_body_is_refused(text: str) -> None:
    with pytest.raises(EmptyBody) as caught:
        count_segments(text)
    assert caught.value.code == "empty_body"
    assert caught.value.field == "body"
    with pytest.raises(EmptyBody):
        validate_body(text)


@pytest.mark.parametrize(
    ("text", "position", "character"),
    [
        ("\x00", 0, "\x00"),
        ("bell\x07", 4, "\x07"),
        ("vt\x0b", 2, "\x0b"),
        ("del\x7f", 3, "\x7f"),
        ("c1\x85", 2, "\x85"),
        ("lone \ud83d surrogate", 5, "\ud83d"),
        (CYRILLIC + "\x1b", 1, "\x1b"),
    ],
)
def test_control_characters_are_refused_with_their_position(
    text: str, position: int, character: str
) -> None:
    with pytest.raises(InvalidCharacter) as caught:
        count_segments(text)
    assert (caught.value.code, caught.value.position) == ("invalid_character", position)
    assert caught.value.character == character
    assert f"U+{ord(character):04X}" in caught.value.message


def test_a_tab_is_sendable_as_ucs2() -> None:
    # Not in GSM 03.38, yet Sinch sends it: the whole text goes as UCS-2.
    result = count_segments("col1\tcol2")
    assert (result.encoding, result.units, result.segments) == (Encoding.UCS2, 9, 1)


def test_cr_lf_and_form_feed_are_sendable() -> None:
    result = count_segments("line one\r\nline two\fpage two")
    assert result.encoding is Encoding.GSM7
    assert result.units == 28
    assert count_segments(CYRILLIC + "\r\n\f").encoding is Encoding.UCS2


def test_format_characters_such_as_zero_width_joiner_are_sendable() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert count_segments(family).units == 8
