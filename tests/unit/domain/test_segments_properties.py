"""Properties of encoding and splitting, checked against a GSM 03.38 codec written out here.

The reference tables below are typed again from 3GPP TS 23.038 (not imported from src), so a
wrong entry in ``domain/gsm7.py`` shows up as a disagreement.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsgateway.domain.errors import InvalidCharacter
from smsgateway.domain.gsm7 import is_gsm7
from smsgateway.domain.segments import Encoding, count_segments

# Code 0x00 to 0x7F, sixteen per line; 0x1B is the escape to the extension table.
REFERENCE_BASIC = (
    "@\u00a3$\u00a5\u00e8\u00e9\u00f9\u00ec\u00f2\u00c7\n\u00d8\u00f8\r\u00c5\u00e5"
    "\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039e\x1b\u00c6\u00e6\u00df\u00c9"
    " !\"#\u00a4%&'()*+,-./"
    "0123456789:;<=>?"
    "\u00a1ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZ\u00c4\u00d6\u00d1\u00dc\u00a7"
    "\u00bfabcdefghijklmno"
    "pqrstuvwxyz\u00e4\u00f6\u00f1\u00fc\u00e0"
)
REFERENCE_EXTENSION = {
    0x0A: "\x0c",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "\u20ac",
}
ESC = 0x1B

REFERENCE_SEPTETS: dict[str, tuple[int, ...]] = {
    character: (code,) for code, character in enumerate(REFERENCE_BASIC) if code != ESC
}
REFERENCE_SEPTETS.update(
    {character: (ESC, code) for code, character in REFERENCE_EXTENSION.items()}
)


def encode_septets(text: str) -> list[int]:
    """GSM 03.38 septets for ``text``; KeyError if a character is not in the alphabet."""
    return [septet for character in text for septet in REFERENCE_SEPTETS[character]]


def encode_utf16(text: str) -> list[int]:
    """UTF-16 code units of ``text``; UnicodeEncodeError on a lone surrogate."""
    data = text.encode("utf-16-le")
    return [int.from_bytes(data[i : i + 2], "little") for i in range(0, len(data), 2)]


def is_low_surrogate(unit: int) -> bool:
    return 0xDC00 <= unit <= 0xDFFF


BASIC_CHARACTERS = sorted(c for c in REFERENCE_BASIC if c != "\x1b")
EXTENSION_CHARACTERS = sorted(REFERENCE_EXTENSION.values())
NON_GSM_VISIBLE = ["\u044f", "\u4e2d", "\u2014", "\u00e1", "\u00e7", "`", "\u0634"]
NON_GSM_BMP = [*NON_GSM_VISIBLE, "\u00a0", "\u200b"]

gsm_character = st.one_of(st.sampled_from(BASIC_CHARACTERS), st.sampled_from(EXTENSION_CHARACTERS))
gsm_texts = st.text(gsm_character, min_size=1, max_size=700).filter(lambda t: not t.isspace())
# Anything a body may hold: no control characters other than CR, LF, FF; no lone surrogates.
sendable_character = st.characters(
    blacklist_categories=("Cc", "Cs"), whitelist_characters="\t\r\n\x0c"
)
emoji = st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF)
ucs2_character = st.one_of(gsm_character, st.sampled_from(NON_GSM_BMP), emoji, sendable_character)


@st.composite
def ucs2_texts(draw: st.DrawFn) -> str:
    """Sendable texts with at least one character outside GSM 03.38."""
    text = draw(st.text(ucs2_character, max_size=400))
    extra = draw(st.one_of(st.sampled_from(NON_GSM_VISIBLE), emoji))
    position = draw(st.integers(min_value=0, max_value=len(text)))
    return text[:position] + extra + text[position:]


ASTRAL = ["\U0001f600", "\U0001f44d", "\U0001f3fd", "\U00020000"]


@st.composite
def near_part_boundaries(
    draw: st.DrawFn, singles: list[str], doubles: list[str], per_part: int, first: str = ""
) -> str:
    """Texts dense in two-unit characters whose unit total ends just under a multiple of the
    part size: where a character straddling a boundary costs one more part."""
    rng = draw(st.randoms(use_true_random=False))
    target = draw(st.integers(2, 5)) * per_part - draw(st.integers(0, 4))
    share = draw(st.floats(0.05, 0.95))
    text, units = first, len(first)
    while units < target:
        if units + 2 <= target and rng.random() < share:
            text, units = text + rng.choice(doubles), units + 2
        else:
            text, units = text + rng.choice(singles), units + 1
    return text


def reference_part_count(costs: list[int], single: int, per_part: int) -> int:
    """Parts for characters of these unit costs, packed one character at a time."""
    if sum(costs) <= single:
        return 1
    parts, used = 1, 0
    for cost in costs:
        if used + cost > per_part:
            parts, used = parts + 1, 0
        used += cost
    return parts


@given(st.text(st.one_of(gsm_character, st.characters(blacklist_categories=("Cs",)))))
def test_is_gsm7_agrees_with_the_reference_codec(text: str) -> None:
    assert is_gsm7(text) is all(character in REFERENCE_SEPTETS for character in text)


@settings(deadline=None)  # long texts; a busy CI core must not turn into a flaky failure
@given(
    st.one_of(
        gsm_texts,
        near_part_boundaries(BASIC_CHARACTERS, EXTENSION_CHARACTERS, 153, first="x"),
    )
)
def test_gsm7_parts_fit_rejoin_and_never_split_an_escape(text: str) -> None:
    result = count_segments(text)
    whole = encode_septets(text)
    assert result.encoding is Encoding.GSM7
    assert result.units == len(whole)
    assert result.characters == len(text)
    costs = [len(encode_septets(character)) for character in text]
    assert result.segments == reference_part_count(costs, 160, 153)

    parts = result.split_parts()
    assert "".join(parts) == text
    assert len(parts) == result.segments
    limit = 160 if len(whole) <= 160 else 153
    assert (len(parts) == 1) is (len(whole) <= 160)
    boundary = 0
    for index, part in enumerate(parts):
        septets = encode_septets(part)
        assert 0 < len(septets) <= limit
        if index + 1 < len(parts):
            # Greedy: the next character would not have fitted in this part.
            assert len(encode_septets(part + parts[index + 1][0])) > limit
        boundary += len(septets)
        # The cut never falls between an escape and the code it introduces.
        assert whole[boundary - 1] != ESC
    assert boundary == len(whole)


@settings(deadline=None)
@given(st.one_of(ucs2_texts(), near_part_boundaries(NON_GSM_VISIBLE, ASTRAL, 67, first="\u044f")))
def test_ucs2_parts_fit_rejoin_and_never_split_a_surrogate_pair(text: str) -> None:
    result = count_segments(text)
    whole = encode_utf16(text)
    assert result.encoding is Encoding.UCS2
    assert result.units == len(whole)
    costs = [len(encode_utf16(character)) for character in text]
    assert result.segments == reference_part_count(costs, 70, 67)

    parts = result.split_parts()
    assert "".join(parts) == text
    assert len(parts) == result.segments
    limit = 70 if len(whole) <= 70 else 67
    assert (len(parts) == 1) is (len(whole) <= 70)
    boundary = 0
    for index, part in enumerate(parts):
        units = encode_utf16(part)  # raises on a part holding half a surrogate pair
        assert 0 < len(units) <= limit
        if index + 1 < len(parts):
            assert len(encode_utf16(part + parts[index + 1][0])) > limit
        boundary += len(units)
        if boundary < len(whole):
            assert not is_low_surrogate(whole[boundary])
    assert boundary == len(whole)


unsendable_character = st.characters(whitelist_categories=("Cc", "Cs")).filter(
    lambda c: c not in "\t\r\n\x0c"
)


@given(st.text(sendable_character, max_size=50), unsendable_character)
def test_an_unsendable_character_is_refused_at_its_position(prefix: str, bad: str) -> None:
    with pytest.raises(InvalidCharacter) as caught:
        count_segments("x" + prefix + bad + "tail")
    assert caught.value.position == len(prefix) + 1
    assert caught.value.character == bad
    assert caught.value.code == "invalid_character"
