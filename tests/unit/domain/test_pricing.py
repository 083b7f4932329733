"""Price tables and cost estimates, in exact decimals."""

import json
from decimal import Decimal
from importlib import resources

import pytest

from smsgateway.domain.errors import PriceTableError
from smsgateway.domain.phone import parse_phone_number
from smsgateway.domain.pricing import (
    CountryCost,
    PriceTable,
    estimate_cost,
    load_price_table,
    parse_price_table,
)

TABLE = '{"currency": "EUR", "default": null, "prices": {"1": "0.0075", "46": "0.0450"}}'
US = parse_phone_number("+12015550123")
CA = parse_phone_number("+14165550123")
SE = parse_phone_number("+46701234567")
GB = parse_phone_number("+447400123456")


def test_load_a_table() -> None:
    table = load_price_table(TABLE)
    assert table.currency == "EUR"
    assert table.prices == {1: Decimal("0.0075"), 46: Decimal("0.0450")}
    assert table.default is None
    assert table.price_for(46) == Decimal("0.0450")
    assert table.price_for(44) is None


def test_json_numbers_are_read_exactly() -> None:
    table = load_price_table('{"currency": "USD", "prices": {"1": 0.1}, "default": 0.2}')
    assert table.prices[1] == Decimal("0.1")
    assert table.default == Decimal("0.2")
    assert table.price_for(44) == Decimal("0.2")


def test_the_shipped_example_table_parses() -> None:
    text = resources.files("smsgateway.domain").joinpath("price_table.example.json").read_text()
    table = load_price_table(text)
    assert table.currency == "EUR"
    assert table.price_for(46) is not None


def test_estimate_is_segments_times_recipients_times_price_per_country() -> None:
    estimate = estimate_cost(load_price_table(TABLE), segments=3, recipients=[US, SE, CA, GB])
    assert estimate.currency == "EUR"
    assert estimate.lines == (
        CountryCost(1, 2, 6, unit_price=Decimal("0.0075"), cost=Decimal("0.0450")),
        CountryCost(44, 1, 3, unit_price=None, cost=None),
        CountryCost(46, 1, 3, unit_price=Decimal("0.0450"), cost=Decimal("0.1350")),
    )
    assert estimate.total == Decimal("0.1800")
    assert estimate.unknown_country_codes == (44,)
    assert not estimate.complete


def test_a_default_prices_every_other_country() -> None:
    table = PriceTable("EUR", {46: Decimal("0.05")}, default=Decimal("0.10"))
    estimate = estimate_cost(table, segments=1, recipients=[SE, GB])
    assert estimate.total == Decimal("0.15")
    assert estimate.complete


def test_totals_are_exact() -> None:
    table = PriceTable("EUR", {46: Decimal("0.1")})
    assert estimate_cost(table, segments=1, recipients=[SE] * 3).total == Decimal("0.3")


def test_no_recipients_cost_nothing() -> None:
    estimate = estimate_cost(load_price_table(TABLE), segments=2, recipients=[])
    assert (estimate.lines, estimate.total, estimate.complete) == ((), Decimal(0), True)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"currency": "euro", "prices": {}}, "currency"),
        ({"prices": {}}, "currency"),
        ({"currency": "EUR"}, "prices"),
        ({"currency": "EUR", "prices": ["1"]}, "prices"),
        ({"currency": "EUR", "prices": {"+1": "0.1"}}, "prices.+1"),
        ({"currency": "EUR", "prices": {"0": "0.1"}}, "prices.0"),
        ({"currency": "EUR", "prices": {"1234": "0.1"}}, "prices.1234"),
        ({"currency": "EUR", "prices": {"1": "-0.1"}}, "prices.1"),
        ({"currency": "EUR", "prices": {"1": "NaN"}}, "prices.1"),
        ({"currency": "EUR", "prices": {"1": "Infinity"}}, "prices.1"),
        ({"currency": "EUR", "prices": {"1": "cheap"}}, "prices.1"),
        ({"currency": "EUR", "prices": {"1": True}}, "prices.1"),
        ({"currency": "EUR", "prices": {"1": 0.1}}, "prices.1"),  # a float is not exact
        ({"currency": "EUR", "prices": {}, "default": "x"}, "default"),
        ({"currency": "EUR", "prices": {}, "pricing": {}}, "pricing"),
    ],
)
def test_invalid_tables_name_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(PriceTableError) as caught:
        parse_price_table(data)
    assert (caught.value.code, caught.value.field) == ("invalid_price_table", field)


@pytest.mark.parametrize("text", ["{", "[]", '"EUR"'])
def test_invalid_json_is_a_price_table_error(text: str) -> None:
    with pytest.raises(PriceTableError):
        load_price_table(text)


def test_tables_round_trip_through_json() -> None:
    data = {"currency": "SEK", "default": "0.5", "prices": {"46": "0.35"}}
    assert load_price_table(json.dumps(data)) == parse_price_table(data)
