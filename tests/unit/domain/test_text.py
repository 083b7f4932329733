"""The one check for text and instants the database can keep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from smsgateway.domain.text import find_unstorable, is_plausible_instant


@given(st.text())
def test_unstorable_is_exactly_nul_or_a_lone_surrogate(text: str) -> None:
    expected = next(
        (i for i, c in enumerate(text) if c == "\x00" or "\ud800" <= c <= "\udfff"), None
    )
    assert find_unstorable(text) == expected


def test_storable_text_encodes_as_utf8_without_nul() -> None:
    for text in ("tab\tand emoji 😀", "", "ünïcödé"):
        assert find_unstorable(text) is None
        assert b"\x00" not in text.encode("utf-8")


@given(st.datetimes(timezones=st.just(timezone(timedelta(hours=14)))))
def test_any_instant_can_be_judged_without_overflow(moment: datetime) -> None:
    plausible = is_plausible_instant(moment)
    assert plausible == (
        2000 <= moment.year < 9000 and moment.replace(tzinfo=None) > datetime(2000, 1, 1)
    )


def test_the_edges() -> None:
    assert is_plausible_instant(datetime(2026, 12, 3, tzinfo=UTC))
    assert not is_plausible_instant(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))))
    assert not is_plausible_instant(datetime(9999, 12, 31, tzinfo=timezone(timedelta(hours=-1))))
