"""Price estimates: segments times recipients times each recipient's price per segment.

A price table maps country calling codes to a price per segment in one currency, e.g.
``{"currency": "EUR", "default": null, "prices": {"1": "0.0075", "46": "0.0450"}}``. Prices are
Decimals (strings or JSON numbers, read exactly, never through float). A calling code can cover
several countries (+1: US, Canada, much of the Caribbean); the table prices the calling code.
``price_table.example.json`` next to this module is a table to copy; its prices are made up.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Final

from smsgateway.domain.errors import PriceTableError
from smsgateway.domain.phone import PhoneNumber

_CURRENCY: Final = re.compile(r"[A-Z]{3}")
_CALLING_CODE: Final = re.compile(r"[1-9][0-9]{0,2}")
_KEYS: Final = frozenset({"currency", "default", "prices", "note"})


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Price per segment by country calling code; ``default`` prices every other code, if set."""

    currency: str
    prices: Mapping[int, Decimal]
    default: Decimal | None = None

    def price_for(self, country_code: int) -> Decimal | None:
        """The price of one segment to ``country_code``, or None if the table has none."""
        return self.prices.get(country_code, self.default)


@dataclass(frozen=True, slots=True)
class CountryCost:
    """The cost for the recipients of one calling code; ``unit_price``/``cost`` None if unknown."""

    country_code: int
    recipients: int
    segments: int
    unit_price: Decimal | None
    cost: Decimal | None


@dataclass(frozen=True, slots=True)
class CostEstimate:
    """What a message would cost: per calling code, in total, and which codes have no price.

    ``total`` sums the known costs only; ``complete`` says whether every recipient was priced.
    """

    currency: str
    lines: tuple[CountryCost, ...]
    total: Decimal
    unknown_country_codes: tuple[int, ...]

    @property
    def complete(self) -> bool:
        """Whether every recipient's country has a price."""
        return not self.unknown_country_codes


def parse_price_table(data: Mapping[str, object]) -> PriceTable:
    """Build a ``PriceTable`` from its mapping form, or raise ``PriceTableError`` naming the field.

    Keys: ``currency`` (ISO 4217, e.g. ``EUR``), ``prices`` (calling code string → price),
    optional ``default`` (price or null) and ``note`` (free text, ignored).
    """
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise PriceTableError(f"Unknown keys in the price table: {unknown}.", field=unknown[0])
    currency = data.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        raise PriceTableError(
            "The currency must be an ISO 4217 code such as EUR.", field="currency"
        )
    raw_prices = data.get("prices")
    if not isinstance(raw_prices, Mapping):
        raise PriceTableError("The prices must be a mapping of calling codes.", field="prices")
    prices: dict[int, Decimal] = {}
    for key, value in raw_prices.items():
        if not isinstance(key, str) or not _CALLING_CODE.fullmatch(key):
            raise PriceTableError(
                f"{key!r} is not a country calling code (1 to 3 digits).", field=f"prices.{key}"
            )
        prices[int(key)] = _parse_price(value, field=f"prices.{key}")
    raw_default = data.get("default")
    default = None if raw_default is None else _parse_price(raw_default, field="default")
    return PriceTable(currency, MappingProxyType(prices), default)


def load_price_table(text: str) -> PriceTable:
    """Parse a price table from JSON text (numbers are read as Decimal, not float)."""
    try:
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise PriceTableError(f"The price table is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise PriceTableError("The price table must be a JSON object.")
    return parse_price_table(data)


def estimate_cost(
    table: PriceTable,
    *,
    segments: int,
    recipients: Iterable[PhoneNumber],
    segments_by_recipient: Mapping[str, int] | None = None,
) -> CostEstimate:
    """Estimate sending ``segments`` parts to each of ``recipients``, grouped by calling code;
    a recipient (E.164) in ``segments_by_recipient`` (a templated text) is sent that many."""
    per_code: Counter[int] = Counter()
    parts_per_code: Counter[int] = Counter()
    for number in recipients:
        per_code[number.country_code] += 1
        parts_per_code[number.country_code] += (
            segments
            if segments_by_recipient is None
            else segments_by_recipient.get(number.e164, segments)
        )
    lines: list[CountryCost] = []
    unknown: list[int] = []
    total = Decimal(0)
    for country_code in sorted(per_code):
        parts = parts_per_code[country_code]
        unit_price = table.price_for(country_code)
        cost = None if unit_price is None else unit_price * parts
        if cost is None:
            unknown.append(country_code)
        else:
            total += cost
        lines.append(CountryCost(country_code, per_code[country_code], parts, unit_price, cost))
    return CostEstimate(table.currency, tuple(lines), total, tuple(unknown))


def _parse_price(value: object, *, field: str) -> Decimal:
    # bool is an int; true is not a price. float is refused: 0.1 is not exact in binary.
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise PriceTableError('A price must be a decimal string such as "0.0450".', field=field)
    try:
        price = Decimal(value)
    except InvalidOperation:
        raise PriceTableError(f"{value!r} is not a decimal number.", field=field) from None
    if not price.is_finite() or price < 0:
        raise PriceTableError(f"{value!r} is not a price (finite, not negative).", field=field)
    return price
