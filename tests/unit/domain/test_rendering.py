"""Templated texts as Sinch sends them: each recipient's ${name} filled in, and the parts each
recipient's own text takes (which prices, previews and spend caps count)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsgateway.domain.compose import count_rendered, prepare_body
from smsgateway.domain.errors import EmptyBody, TooManySegments
from smsgateway.domain.parameters import render
from smsgateway.domain.phone import parse_phone_number
from smsgateway.domain.pricing import PriceTable, estimate_cost
from smsgateway.domain.segments import count_segments

ANN = "+14155550157"
BOB = "+14155550158"
SE = "+46701234567"


def test_a_recipients_value_wins_over_the_default_and_unknown_names_stay() -> None:
    parameters = {"name": {ANN: "Ann", "default": "there"}, "code": {BOB: "42"}}
    body = "Hi ${name}, ${code} ${other}"
    assert render(body, parameters, ANN) == "Hi Ann, ${code} ${other}"
    assert render(body, parameters, BOB) == "Hi there, 42 ${other}"


def test_each_recipient_is_counted_on_its_own_text() -> None:
    prepared = prepare_body("Hi ${name}", smart_encoding=False, max_segments=10)
    parameters = {"name": {ANN: "x" * 160, BOB: "Łukasz", "default": "there"}}
    assert count_rendered(prepared, parameters, [ANN, BOB, SE], max_segments=10) == {
        ANN: 2,  # 163 GSM-7 characters
        BOB: 1,  # UCS-2, 9 characters
        SE: 1,
    }


def test_a_text_without_a_filled_placeholder_is_the_same_for_everyone() -> None:
    prepared = prepare_body("Hi ${unknown}", smart_encoding=False, max_segments=10)
    assert count_rendered(prepared, {"name": {"default": "x"}}, [ANN], max_segments=10) is None


def test_the_longest_recipient_text_is_held_to_max_segments() -> None:
    prepared = prepare_body("Hi ${name}", smart_encoding=True, max_segments=2)
    with pytest.raises(TooManySegments) as refused:
        count_rendered(prepared, {"name": {ANN: "y" * 400}}, [ANN], max_segments=2)
    assert (refused.value.segments, refused.value.max_segments) == (3, 2)


def test_the_cost_sums_each_recipients_parts() -> None:
    table = PriceTable("EUR", {1: Decimal("0.0075"), 46: Decimal("0.0450")})
    numbers = [parse_phone_number(n) for n in (ANN, BOB, SE)]
    cost = estimate_cost(
        table, segments=1, recipients=numbers, segments_by_recipient={ANN: 3, SE: 2}
    )
    # BOB has no entry: the message's own count.
    assert [(line.country_code, line.recipients, line.segments) for line in cost.lines] == [
        (1, 2, 4),
        (46, 1, 2),
    ]
    assert cost.total == 4 * Decimal("0.0075") + 2 * Decimal("0.0450")


_VALUES = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("x{}€Ł"), max_size=200
)


@given(
    template=st.sampled_from(["${a}", "Hi ${a}, ${b}!", "${a}${a}${b}", "plain ${c}"]),
    a=st.dictionaries(st.sampled_from([ANN, BOB, "default"]), _VALUES, max_size=3),
    b=st.dictionaries(st.sampled_from([ANN, BOB, "default"]), _VALUES, max_size=3),
)
def test_every_count_is_that_of_the_text_sinch_sends(
    template: str, a: dict[str, str], b: dict[str, str]
) -> None:
    prepared = prepare_body(template, smart_encoding=False, max_segments=255)
    parameters = {"a": a, "b": b}
    try:
        expected = {r: count_segments(render(template, parameters, r)).segments for r in (ANN, BOB)}
    except EmptyBody:
        # A recipient whose text is filled in to nothing: refused as an empty body would be.
        with pytest.raises(EmptyBody):
            count_rendered(prepared, parameters, [ANN, BOB], max_segments=255)
        return
    counted = count_rendered(prepared, parameters, [ANN, BOB], max_segments=255)
    assert {r: (counted or {}).get(r, prepared.segments) for r in (ANN, BOB)} == expected
