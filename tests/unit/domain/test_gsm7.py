"""The GSM 03.38 tables and the septet arithmetic built on them."""

import pytest

from smsgateway.domain import gsm7


def test_basic_table_has_128_codes_with_escape_at_0x1b() -> None:
    assert len(gsm7.BASIC_TABLE) == 128
    assert gsm7.BASIC_TABLE.index("\x1b") == gsm7.ESCAPE
    assert len(gsm7.BASIC_CHARACTERS) == 127


def test_extension_table_is_exactly_the_ten_printable_and_form_feed_entries() -> None:
    assert set(gsm7.EXTENSION_CHARACTERS) == set("^{}\\[]~|€\f")
    assert len(gsm7.EXTENSION_TABLE) == 10
    assert gsm7.EXTENSION_TABLE[0x65] == "€"
    assert gsm7.EXTENSION_TABLE[0x0A] == "\f"


@pytest.mark.parametrize(
    ("character", "code"),
    [("@", 0x00), ("£", 0x01), ("$", 0x02), ("\n", 0x0A), ("\r", 0x0D), ("Δ", 0x10),
     ("_", 0x11), ("¤", 0x24), ("¡", 0x40), ("§", 0x5F), ("¿", 0x60), ("à", 0x7F), ("Ç", 0x09)],
)  # fmt: skip
def test_basic_table_positions(character: str, code: int) -> None:
    assert gsm7.BASIC_TABLE[code] == character


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, world!", True),
        ("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà", True),
        ("Price: 5€ {ok} [x] ~ | \\ ^", True),
        ("line\r\nfeed\f", True),
        ("", True),
        ("`backtick`", False),  # ASCII, yet not in GSM 03.38
        ("ç", False),  # only the capital Ç is in the table
        ("á", False),
        ("Привет", False),
        ("😀", False),
        ("tab\there", False),
        ("\x1b", False),  # the escape code is not a character a text may hold
    ],
)
def test_is_gsm7(text: str, expected: bool) -> None:
    assert gsm7.is_gsm7(text) is expected


def test_is_basic_refuses_extension_characters() -> None:
    assert gsm7.is_basic("plain text @ 100%")
    assert not gsm7.is_basic("5€")


@pytest.mark.parametrize(
    ("text", "septets"),
    [("abc", 3), ("€", 2), ("{}", 4), ("a\fb", 4), ("[x]~", 7), ("ÄÖÜ", 3), ("", 0)],
)
def test_count_septets(text: str, septets: int) -> None:
    assert gsm7.count_septets(text) == septets


def test_septet_cost_per_character() -> None:
    assert gsm7.septet_cost("a") == 1
    assert gsm7.septet_cost("|") == 2
    with pytest.raises(ValueError, match="U\\+00E7"):
        gsm7.septet_cost("ç")


def test_first_non_gsm7_and_extension_positions() -> None:
    assert gsm7.first_non_gsm7("abc") is None
    assert gsm7.first_non_gsm7("ab—c😀") == 2
    assert gsm7.extension_positions("a€b{c}") == [1, 3, 5]
