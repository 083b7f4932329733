"""Smart encoding replaces look-alikes only when that makes the whole text GSM-7."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsgateway.domain.gsm7 import GSM7_CHARACTERS, is_gsm7
from smsgateway.domain.smart_encoding import LOOK_ALIKES, Replacement, apply_smart_encoding


def test_typographic_punctuation_becomes_gsm7_with_a_report() -> None:
    text = "It\u2019s \u201cdone\u201d \u2014 see you\u2026"
    result = apply_smart_encoding(text)
    assert result.text == 'It\'s "done" - see you...'
    assert result.changed
    assert result.replacements == (
        Replacement(2, "\u2019", "'"),
        Replacement(5, "\u201c", '"'),
        Replacement(10, "\u201d", '"'),
        Replacement(12, "\u2014", "-"),
        Replacement(21, "\u2026", "..."),
    )


def test_report_positions_index_the_original_text() -> None:
    text = "a\u2026b\u2026c"
    result = apply_smart_encoding(text)
    assert result.text == "a...b...c"
    for replacement in result.replacements:
        assert text[replacement.position] == replacement.original


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10\u00a0km", "10 km"),  # no-break space
        ("1\u202f000", "1 000"),  # narrow no-break space
        ("a\u2009b\u3000c", "a b c"),  # thin and ideographic spaces
        ("\u2022 milk\n\u2022 eggs", "- milk\n- eggs"),  # bullets
        ("9\u20135", "9-5"),  # en dash
        ("\u2212 5", "- 5"),  # minus sign
        ("zero\u200bwidth\ufeff", "zerowidth"),  # invisible characters are dropped
        ("soft\u00adhyphen", "softhyphen"),
        ("`code`", "'code'"),  # the grave accent is ASCII but not GSM 03.38
        ("\u201equote\u201c", '"quote"'),  # German quotation marks
        ("\u00abcitation\u00bb", '"citation"'),
        ("2\u02c63", "2^3"),  # becomes an extension-table character
    ],
)
def test_look_alikes(text: str, expected: str) -> None:
    assert apply_smart_encoding(text).text == expected


def test_nothing_changes_when_another_character_needs_ucs2_anyway() -> None:
    text = "\u201c\u041f\u0440\u0438\u0432\u0435\u0442\u201d \u2014 \U0001f600"
    result = apply_smart_encoding(text)
    assert result.text == text
    assert result.replacements == ()
    assert not result.changed


def test_a_gsm7_text_is_returned_as_is() -> None:
    result = apply_smart_encoding("Plain 'ASCII' - text...")
    assert result.text == "Plain 'ASCII' - text..."
    assert not result.changed


def test_letters_are_never_folded() -> None:
    # ç is not in GSM 03.38 (only Ç is), but swapping letters could change meaning.
    assert apply_smart_encoding("gar\u00e7on").text == "gar\u00e7on"


@pytest.mark.parametrize(("look_alike", "replacement"), sorted(LOOK_ALIKES.items()))
def test_every_look_alike_needs_ucs2_and_its_replacement_does_not(
    look_alike: str, replacement: str
) -> None:
    assert not is_gsm7(look_alike)
    assert is_gsm7(replacement)
    assert apply_smart_encoding(f"x{look_alike}y").text == f"x{replacement}y"


@given(st.lists(st.sampled_from([*sorted(GSM7_CHARACTERS), "\t"]), min_size=1, max_size=60))
def test_tabs_in_an_otherwise_gsm7_text_become_spaces_each_reported(chars: list[str]) -> None:
    text = "".join(chars)
    result = apply_smart_encoding(text)
    assert result.text == text.replace("\t", " ")
    assert is_gsm7(result.text)
    tabs = [index for index, character in enumerate(text) if character == "\t"]
    assert result.replacements == tuple(Replacement(index, "\t", " ") for index in tabs)
