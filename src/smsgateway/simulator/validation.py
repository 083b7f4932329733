"""Send-batch and dry-run request bodies, checked the way Sinch checks them.

Errors are Sinch's: `syntax_invalid_json` for a body that is not a JSON object,
`syntax_invalid_parameter_format` for a value of the wrong shape (a malformed number, an
unknown `delivery_report`), `syntax_constraint_violation` for a missing field or a value out
of range. Recipients are MSISDNs: an optional `+`, then 7 to 15 digits not starting with 0;
Sinch accepts them with or without the `+`, so the simulator does too and echoes them as
given. Group ids are not simulated.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Literal, cast

from smsgateway.simulator.errors import constraint_violation, invalid_format, invalid_json
from smsgateway.simulator.rich import MediaBody, binary_parts, parse_media_body
from smsgateway.simulator.times import parse_instant

DeliveryReportMode = Literal["none", "summary", "full", "per_recipient", "per_recipient_final"]
DELIVERY_REPORT_MODES: frozenset[str] = frozenset(
    {"none", "summary", "full", "per_recipient", "per_recipient_final"}
)

MAX_RECIPIENTS = 1000
MAX_BODY_CHARS = 2000
MAX_REFERENCE_CHARS = 2048
MAX_CALLBACK_URL_CHARS = 2048
MAX_EXPIRY_S = 3 * 24 * 3600.0

MSISDN = re.compile(r"\+?[1-9][0-9]{6,14}")
PARAMETER = re.compile(r"\$\{([^}]+)\}")

_FLAGS = ("flash_message", "truncate_concat", "feedback_enabled")
_SMALL_INTS = {"from_ton": (0, 6), "from_npi": (0, 18)}


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """A send request that passed validation; `options` holds the rarely used fields."""

    to: tuple[str, ...]
    sender: str | None
    body: str
    delivery_report: DeliveryReportMode = "none"
    send_at: float | None = None
    expire_at: float | None = None
    callback_url: str | None = None
    client_reference: str | None = None
    parameters: dict[str, dict[str, str]] | None = None
    max_number_of_message_parts: int | None = None
    options: dict[str, bool | int] = field(default_factory=dict)
    # mt_text, mt_media (then `media` is the body object and `body` its message) or mt_binary
    # (then `body` is base64, `udh` hex and `binary_parts` the parts it takes).
    kind: str = "mt_text"
    media: MediaBody | None = None
    udh: str | None = None
    binary_parts: int = 1
    strict_validation: bool | None = None


def parse_batch_request(raw: bytes, *, now: float) -> BatchRequest:
    """Parse and check a send-batch body; raises SimulatorError with Sinch's codes."""
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid_json() from exc
    if not isinstance(document, dict):
        raise invalid_json("The request body must be a JSON object.")
    data = cast(dict[str, object], document)

    kind = data.get("type", "mt_text")
    if kind not in ("mt_text", "mt_media", "mt_binary"):
        raise invalid_format(f"type: must be mt_text, mt_binary or mt_media, got {kind!r}.")
    to = _recipients(data.get("to"))
    media, udh, parts, strict = None, None, 1, None
    if kind == "mt_media":
        media = parse_media_body(data.get("body"))
        body = media.message or ""
        flag = data.get("strict_validation")
        if flag is not None and not isinstance(flag, bool):
            raise invalid_format("strict_validation: must be a boolean.")
        strict = flag
    elif kind == "mt_binary":
        parts = binary_parts(data.get("body"), data.get("udh"))
        body, udh = cast(str, data["body"]), cast(str, data["udh"])
    else:
        body = _body(data.get("body"))
    sender = _optional_str(data, "from", 128)
    mode = data.get("delivery_report", "none")
    if not isinstance(mode, str) or mode not in DELIVERY_REPORT_MODES:
        raise invalid_format(
            "delivery_report: must be one of " + ", ".join(sorted(DELIVERY_REPORT_MODES)) + "."
        )

    send_at = _instant("send_at", _optional_str(data, "send_at", 64))
    expire_at = _instant("expire_at", _optional_str(data, "expire_at", 64))
    send_time = send_at if send_at is not None else now
    if expire_at is not None and not send_time < expire_at <= send_time + MAX_EXPIRY_S:
        raise constraint_violation("expire_at: must be after send_at and within 3 days of it.")

    callback_url = _optional_str(data, "callback_url", MAX_CALLBACK_URL_CHARS)
    if callback_url is not None and not callback_url.startswith(("http://", "https://")):
        raise invalid_format("callback_url: must be an http or https URL.")

    max_parts = data.get("max_number_of_message_parts")
    if max_parts is not None and (
        not isinstance(max_parts, int) or isinstance(max_parts, bool) or max_parts < 1
    ):
        raise constraint_violation("max_number_of_message_parts: must be a positive integer.")

    return BatchRequest(
        to=to,
        sender=sender,
        body=body,
        delivery_report=cast(DeliveryReportMode, mode),
        send_at=send_at,
        expire_at=expire_at,
        callback_url=callback_url,
        client_reference=_optional_str(data, "client_reference", MAX_REFERENCE_CHARS),
        parameters=_parameters(data.get("parameters")),
        max_number_of_message_parts=max_parts,
        options=_options(data),
        kind=kind,
        media=media,
        udh=udh,
        binary_parts=parts,
        strict_validation=strict,
    )


def render_body(
    body: str, parameters: dict[str, dict[str, str]] | None, recipient: str
) -> tuple[str, bool]:
    """The body with `${name}` filled in for `recipient`, and whether a value was missing.

    A parameter with neither a value for the recipient nor a `default` renders empty (Sinch
    then aborts that message with code 405).
    """
    if not parameters or "${" not in body:
        return body, False
    digits = recipient.removeprefix("+")
    missing = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal missing
        values = parameters.get(match.group(1))
        if values is None:
            return match.group(0)
        for key in (recipient, digits, "+" + digits, "default"):
            if key in values:
                return values[key]
        missing = True
        return ""

    return PARAMETER.sub(substitute, body), missing


def _recipients(value: object) -> tuple[str, ...]:
    if value is None:
        raise constraint_violation("to: is required.")
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid_format("to: must be an array of MSISDN strings.")
    recipients = cast(list[str], value)
    if not 1 <= len(recipients) <= MAX_RECIPIENTS:
        raise constraint_violation(f"to: must hold between 1 and {MAX_RECIPIENTS} recipients.")
    for recipient in recipients:
        if MSISDN.fullmatch(recipient) is None:
            raise invalid_format(f"to: {recipient!r} is not a valid MSISDN.")
    return tuple(recipients)


def _body(value: object) -> str:
    if value is None:
        raise constraint_violation("body: is required.")
    if not isinstance(value, str):
        raise invalid_format("body: must be a string.")
    if not 1 <= len(value) <= MAX_BODY_CHARS:
        raise constraint_violation(f"body: must hold between 1 and {MAX_BODY_CHARS} characters.")
    return value


def _optional_str(data: dict[str, object], name: str, max_chars: int) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_format(f"{name}: must be a string.")
    if not 1 <= len(value) <= max_chars:
        raise constraint_violation(f"{name}: must hold between 1 and {max_chars} characters.")
    return value


def _instant(name: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise invalid_format(f"{name}: {text!r} is not an ISO-8601 date and time.") from exc


def _parameters(value: object) -> dict[str, dict[str, str]] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid_format("parameters: must be an object of objects of strings.")
    parameters: dict[str, dict[str, str]] = {}
    for name, values in cast(dict[str, object], value).items():
        if not isinstance(values, dict) or not all(
            isinstance(item, str) for item in values.values()
        ):
            raise invalid_format(f"parameters.{name}: must map recipients to strings.")
        parameters[name] = cast(dict[str, str], values)
    return parameters


def _options(data: dict[str, object]) -> dict[str, bool | int]:
    options: dict[str, bool | int] = {}
    for name in _FLAGS:
        value = data.get(name)
        if value is not None:
            if not isinstance(value, bool):
                raise invalid_format(f"{name}: must be a boolean.")
            options[name] = value
    for name, (low, high) in _SMALL_INTS.items():
        value = data.get(name)
        if value is not None:
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise constraint_violation(f"{name}: must be an integer from {low} to {high}.")
            options[name] = value
    return options
