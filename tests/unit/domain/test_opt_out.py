"""Opt-out, opt-in and help keywords: the whole body, any case, any surrounding whitespace."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsgateway.domain.opt_out import (
    DEFAULT_HELP_KEYWORDS,
    DEFAULT_KEYWORDS,
    DEFAULT_OPT_IN_KEYWORDS,
    DEFAULT_OPT_OUT_KEYWORDS,
    KeywordKind,
    KeywordSet,
    classify_inbound,
    normalise_keyword,
)

K = KeywordKind


def test_default_lists() -> None:
    assert set(DEFAULT_OPT_OUT_KEYWORDS) == {
        "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT",
    }  # fmt: skip
    assert set(DEFAULT_OPT_IN_KEYWORDS) == {"START", "UNSTOP", "YES"}
    assert set(DEFAULT_HELP_KEYWORDS) == {"HELP"}


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("STOP", K.OPT_OUT),
        ("stop", K.OPT_OUT),
        ("Stop", K.OPT_OUT),
        (" stop ", K.OPT_OUT),
        ("STOP\n", K.OPT_OUT),
        ("\tStopAll\r\n", K.OPT_OUT),
        ("unsubscribe", K.OPT_OUT),
        ("Cancel", K.OPT_OUT),
        ("END", K.OPT_OUT),
        ("quit", K.OPT_OUT),
        ("\u00a0STOP\u00a0", K.OPT_OUT),  # no-break spaces, as some handsets send
        ("START", K.OPT_IN),
        ("unstop", K.OPT_IN),
        ("Yes", K.OPT_IN),
        ("help", K.HELP),
        (" HELP ", K.HELP),
        ("please stop", None),
        ("stop please", None),
        ("STOP.", None),
        ("STOP!", None),
        ("S TOP", None),
        ("STOPP", None),
        ("", None),
        ("   ", None),
        ("Hello, is this the pharmacy?", None),
        ("stop all", None),
    ],
)
def test_default_classification(body: str, kind: KeywordKind | None) -> None:
    assert classify_inbound(body) is kind
    assert DEFAULT_KEYWORDS.classify(body) is kind


def test_lists_are_parameters() -> None:
    keywords = KeywordSet.of(
        opt_out_keywords=["ARRET", "stop all"],
        opt_in_keywords=["Commencer"],
        help_keywords=["AIDE", "INFO"],
    )
    assert classify_inbound("arret", keywords) is K.OPT_OUT
    assert classify_inbound(" STOP   ALL ", keywords) is K.OPT_OUT
    assert classify_inbound("COMMENCER", keywords) is K.OPT_IN
    assert classify_inbound("info", keywords) is K.HELP
    assert classify_inbound("STOP", keywords) is None
    assert classify_inbound("HELP", keywords) is None


def test_an_empty_list_switches_a_kind_off() -> None:
    keywords = KeywordSet.of(help_keywords=[])
    assert classify_inbound("HELP", keywords) is None
    assert classify_inbound("STOP", keywords) is K.OPT_OUT


def test_keywords_are_compared_with_unicode_casefolding() -> None:
    keywords = KeywordSet.of(opt_out_keywords=["STRASSE"])
    assert classify_inbound("straße", keywords) is K.OPT_OUT


@pytest.mark.parametrize(
    "kwargs",
    [
        {"opt_out_keywords": ["STOP"], "opt_in_keywords": ["stop"]},
        {"opt_in_keywords": ["YES"], "help_keywords": ["yes"]},
        {"opt_out_keywords": ["HELP"]},
    ],
)
def test_a_keyword_in_two_lists_is_refused(kwargs: dict[str, list[str]]) -> None:
    with pytest.raises(ValueError, match="both"):
        KeywordSet.of(**kwargs)


@pytest.mark.parametrize("blank", ["", "  ", "\n"])
def test_a_blank_keyword_is_refused(blank: str) -> None:
    with pytest.raises(ValueError, match="blank"):
        KeywordSet.of(opt_out_keywords=["STOP", blank])


def test_normalise_keyword() -> None:
    assert normalise_keyword("  Stop \t ALL\n") == "stop all"


whitespace = st.text(st.sampled_from(" \t\r\n\u00a0\u2003"), max_size=4)
all_defaults = [
    *((word, K.OPT_OUT) for word in DEFAULT_OPT_OUT_KEYWORDS),
    *((word, K.OPT_IN) for word in DEFAULT_OPT_IN_KEYWORDS),
    *((word, K.HELP) for word in DEFAULT_HELP_KEYWORDS),
]


@st.composite
def any_case(draw: st.DrawFn, word: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.lower() if flip else c.upper() for c, flip in zip(word, flips, strict=True))


@settings(max_examples=200, deadline=None)
@given(data=st.data(), entry=st.sampled_from(all_defaults), before=whitespace, after=whitespace)
def test_keywords_match_in_any_case_with_any_surrounding_whitespace(
    data: st.DataObject, entry: tuple[str, KeywordKind], before: str, after: str
) -> None:
    word, kind = entry
    body = before + data.draw(any_case(word), label="word") + after
    assert classify_inbound(body) is kind


@settings(max_examples=200, deadline=None)
@given(
    entry=st.sampled_from(all_defaults),
    extra=st.text(st.characters(categories=["L", "N", "P"]), min_size=1, max_size=10),
    prefix=st.booleans(),
)
def test_a_keyword_with_anything_more_is_not_a_keyword(
    entry: tuple[str, KeywordKind], extra: str, prefix: bool
) -> None:
    word, _ = entry
    body = f"{extra} {word}" if prefix else f"{word} {extra}"
    assert classify_inbound(body) is None


@settings(max_examples=200, deadline=None)
@given(body=st.text(max_size=30))
def test_classification_ignores_case_and_spacing_of_any_body(body: str) -> None:
    kind = classify_inbound(body)
    assert classify_inbound(f"  {body.upper()}\n") is classify_inbound(body.upper())
    assert classify_inbound(" ".join(body.split())) is kind
    if kind is not None:
        assert normalise_keyword(body).upper() in {word for word, _ in all_defaults}
