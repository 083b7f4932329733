"""Sinch's per-recipient templating (``parameters``), keyed by numbers exactly as ``to`` is.

``{"name": {"(415) 555-0157": "Ann", "default": "there"}}`` with ``${name}`` in the body: Sinch
looks a recipient's value up by the number it sends to, so each key is parsed as the message's
``to`` entries are (same region, same fixed-line rule: ``phone.parse_phone_number``) and sent
in the same E.164 form. A key must be ``default`` or one of the message's recipients; a key
that is not a valid number, names no recipient, or names the same number as another key of
the same parameter is refused. A key whose text is a ``to`` entry refused for its own reason
is not refused twice: it follows that recipient out of the message. A ``${name}`` in the body
whose parameter has neither a ``default`` nor a value for every recipient is refused too:
Sinch would abort those recipients' messages (code 405, unmatched parameter).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Final

from smsgateway.domain.errors import (
    InvalidCharacter,
    InvalidPhoneNumber,
    ParameterRefusal,
    ParametersRefused,
)
from smsgateway.domain.phone import E164_FLOOR, parse_phone_number
from smsgateway.domain.recipients import RecipientList
from smsgateway.domain.segments import check_characters

DEFAULT_KEY: Final = "default"
"""The key whose value every recipient without one of its own gets."""

Parameters = dict[str, dict[str, str]]
"""``{name: {E.164 number or "default": value}}``, as Sinch takes it."""

_PLACEHOLDER: Final = re.compile(r"\$\{([^}]+)\}")
"""``${name}`` as Sinch fills it in."""


def normalise_parameters(
    parameters: Mapping[str, Mapping[str, str]],
    recipients: RecipientList,
    *,
    region: str | None = None,
    refuse_fixed_line: bool = False,
    field: str = "parameters",
) -> Parameters:
    """``parameters`` keyed by E.164, checked against ``recipients`` (the message's ``to``).

    Raises ``ParametersRefused`` listing every refused key (field ``parameters.<name>.<key>``).
    """
    known = {duplicate.e164 for duplicate in recipients.duplicates} | set(recipients.e164s)
    refused_raw = {refused.raw.strip() for refused in recipients.refused}
    normalised: Parameters = {}
    refusals: list[ParameterRefusal] = []
    for name, values in parameters.items():
        by_number: dict[str, str] = {}
        first_key: set[str] = set()
        refusals.extend(_unsendable(name, f"{field}.{name}"))
        for key, value in values.items():
            where = f"{field}.{name}.{key}"
            refusals.extend(_unsendable(value, where))
            if key == DEFAULT_KEY:
                by_number[DEFAULT_KEY] = value
                continue
            if key.strip() in refused_raw:
                continue  # refused in `to`, with its reason; the key goes with it
            try:
                number = parse_phone_number(
                    key, region=region, refuse_fixed_line=refuse_fixed_line, field=where
                )
            except InvalidPhoneNumber as exc:
                refusals.append(
                    ParameterRefusal(
                        where,
                        "invalid_phone_number",
                        f"The key is neither 'default' nor a valid number: {exc.message}",
                    )
                )
                continue
            if number.e164 not in known:
                refusals.append(
                    ParameterRefusal(
                        where,
                        "parameter_recipient_unknown",
                        "The key is not one of the message's recipients ('to').",
                    )
                )
            elif number.e164 in first_key:
                refusals.append(
                    ParameterRefusal(
                        where,
                        "duplicate_parameter_recipient",
                        "Another key of this parameter is the same number.",
                    )
                )
            else:
                first_key.add(number.e164)
                by_number[number.e164] = value
        normalised[name] = by_number
    if refusals:
        raise ParametersRefused(refusals)
    return normalised


def refuse_unmatched(
    body: str, parameters: Mapping[str, Mapping[str, str]], recipients: Sequence[str]
) -> None:
    """Refuse a ``${name}`` in ``body`` that some of ``recipients`` (E.164) have no value for,
    with no ``default``: Sinch aborts those messages (405). A ``${name}`` that names no
    parameter is sent as written, as Sinch does; it is not ours to refuse.

    Raises ``ParametersRefused`` (``parameter_value_missing``, field ``parameters.<name>``).
    """
    refusals: list[ParameterRefusal] = []
    for name in dict.fromkeys(_PLACEHOLDER.findall(body)):
        values = parameters.get(name)
        if values is None or DEFAULT_KEY in values:
            continue
        missing = sum(1 for recipient in recipients if recipient not in values)
        if missing:
            refusals.append(
                ParameterRefusal(
                    f"parameters.{name}",
                    "parameter_value_missing",
                    f"The body uses ${{{name}}}, but {missing} recipient(s) have no value for "
                    "it and there is no 'default': Sinch would not send them the message.",
                )
            )
    if refusals:
        raise ParametersRefused(refusals)


def render(body: str, parameters: Mapping[str, Mapping[str, str]], recipient: str) -> str:
    """``body`` as Sinch sends it to ``recipient`` (E.164): each ``${name}`` becomes the
    recipient's value, else the parameter's ``default``; a placeholder with neither (or naming
    no parameter) stays as written, as Sinch leaves it."""

    def value(placeholder: re.Match[str]) -> str:
        values = parameters.get(placeholder.group(1))
        if values is None:
            return placeholder.group(0)
        return values.get(recipient, values.get(DEFAULT_KEY, placeholder.group(0)))

    return _PLACEHOLDER.sub(value, body)


def fills_placeholders(body: str, parameters: Mapping[str, Mapping[str, str]]) -> bool:
    """Whether any ``${name}`` in ``body`` names one of ``parameters``: only then can the text
    differ between recipients."""
    return any(name in parameters for name in _PLACEHOLDER.findall(body))


def parameters_for(
    parameters: Mapping[str, Mapping[str, str]], sendable: Collection[str]
) -> Parameters:
    """The parameters to hand Sinch with a batch to ``sendable``: the keys of recipients left
    out (opted out) are dropped, since a number never handed to Sinch is not handed over in a
    key either. A key that is not E.164 (stored before keys were normalised) is kept as it was
    sent then. A parameter keeps its name even if no key is left, so the body renders as it
    would have."""
    return {
        name: {
            key: value
            for key, value in values.items()
            if key in sendable or key == DEFAULT_KEY or not E164_FLOOR.fullmatch(key)
        }
        for name, values in parameters.items()
    }


def _unsendable(text: str, field: str) -> list[ParameterRefusal]:
    # A value is sent inside the body, and a name or value is stored: the body's rule applies.
    try:
        check_characters(text, field=field)
    except InvalidCharacter as exc:
        return [ParameterRefusal(field, exc.code, exc.message)]
    return []
