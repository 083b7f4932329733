"""The error catalogue: every problem ``code`` the gateway answers with, its status and meaning,
and the codes a failing field (``errors[].code``) can carry.

A problem's ``type`` is ``/problems/<code>``, served from this table, so the URI a caller sees in
an answer always explains it. Codes are part of the public API: add, never rename.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from smsgateway.domain.phone import PhoneRefusal, SenderRefusal


@dataclass(frozen=True, slots=True)
class ProblemKind:
    """One problem ``code``: the HTTP status it comes with and what it means for a caller."""

    code: str
    status: int
    meaning: str


_KINDS: Final = (
    ProblemKind("bad_request", 400, "The request cannot be read."),
    ProblemKind("malformed_json", 400, "The request body is not valid JSON."),
    ProblemKind(
        "invalid_request",
        400,
        "POST /send-sms: the tutorial's own checks refused `recipient` or `message`.",
    ),
    ProblemKind(
        "opted_out",
        400,
        "POST /send-sms: the recipient has opted out (sent STOP); nothing was sent to Sinch.",
    ),
    ProblemKind(
        "unreadable_payload", 400, "A Sinch webhook body is not a JSON object; nothing was kept."
    ),
    ProblemKind(
        "missing_api_key",
        401,
        "No API key was sent: use `Authorization: Bearer <key>` or `X-API-Key: <key>`.",
    ),
    ProblemKind("invalid_api_key", 401, "The API key is unknown or revoked."),
    ProblemKind(
        "unauthorized",
        401,
        "A Sinch webhook call is not authenticated as Sinch's (path secret, Basic or signature).",
    ),
    ProblemKind("forbidden", 403, "The credentials are valid but may not do this."),
    ProblemKind(
        "insufficient_scope",
        403,
        "The API key lacks the scope this operation needs (`send`, `read` or `admin`).",
    ),
    ProblemKind("not_found", 404, "Nothing exists at this path, or no such problem code."),
    ProblemKind("message_not_found", 404, "The caller's tenant has no message with this id."),
    ProblemKind(
        "callback_not_found", 404, "The message has no status-callback event with this id."
    ),
    ProblemKind("not_opted_out", 404, "The number is not opted out: messages may be sent to it."),
    ProblemKind(
        "method_not_allowed", 405, "The path exists but not with this method; see `Allow`."
    ),
    ProblemKind("not_acceptable", 406, "No representation matches the `Accept` header."),
    ProblemKind(
        "not_cancellable",
        409,
        "The message can no longer be cancelled: a send attempt was made or it has ended.",
    ),
    ProblemKind("callback_pending", 409, "The callback event is still queued; it will be sent."),
    ProblemKind("conflict", 409, "The request conflicts with the current state."),
    ProblemKind("payload_too_large", 413, "The request body is larger than the gateway's limit."),
    ProblemKind("unsupported_media_type", 415, "The body's content type is not accepted."),
    ProblemKind(
        "validation_error",
        422,
        "One or more fields are invalid; `errors` names each with its own code.",
    ),
    ProblemKind(
        "invalid_phone_number",
        422,
        "A phone number (in the body or the path) is not a valid E.164 number.",
    ),
    ProblemKind("invalid_cursor", 422, "The `cursor` is not one this API returned."),
    ProblemKind(
        "invalid_character",
        422,
        "Text holds a character that cannot be sent or stored (a control character, U+0000, "
        "a lone surrogate).",
    ),
    ProblemKind("date_out_of_range", 422, "A date lies outside the years 2000 to 9000."),
    ProblemKind(
        "invalid_schedule",
        422,
        "`send_at`/`expire_at` cannot be honoured (too far ahead, or expiring before sending).",
    ),
    ProblemKind(
        "idempotency_key_reused",
        422,
        "The `Idempotency-Key` came with a different request in the last 24 hours; use a new "
        "key for a new message.",
    ),
    ProblemKind("empty_body", 422, "The message body is empty or only whitespace."),
    ProblemKind("body_too_long", 422, "The message body has more characters than Sinch takes."),
    ProblemKind("too_many_segments", 422, "The message needs more parts than `max_segments`."),
    ProblemKind("no_recipients", 422, "`to` is empty."),
    ProblemKind("too_many_recipients", 422, "`to` holds more than 1000 numbers."),
    ProblemKind(
        "invalid_recipients",
        422,
        "Recipients are refused; `errors` lists each by index with its reason.",
    ),
    ProblemKind(
        "country_not_allowed",
        422,
        "Every refused recipient is in a country the caller's destination policy does not allow.",
    ),
    ProblemKind(
        "number_type_not_allowed",
        422,
        "Every refused recipient is of a number type the policy refuses (premium-rate, ...).",
    ),
    ProblemKind(
        "velocity_limited",
        422,
        "Sending would pass a velocity limit (per prefix, country or key); see `Retry-After`.",
    ),
    ProblemKind(
        "spend_cap_reached",
        422,
        "The message would take the tenant past a daily or monthly spend cap; see `Retry-After`.",
    ),
    ProblemKind(
        "sender_not_assigned", 422, "The `sender` is not one of the caller's tenant's numbers."
    ),
    ProblemKind(
        "content_choice",
        422,
        "Exactly one of `body`, `media` and `binary` must be given.",
    ),
    ProblemKind(
        "mms_not_available_in_region",
        422,
        "MMS is sent only from Sinch accounts in region `us` (`SINCH_REGION`).",
    ),
    ProblemKind(
        "mms_destination_not_supported",
        422,
        "A recipient is outside the countries Sinch serves with MMS (US, CA, AU, PR).",
    ),
    ProblemKind(
        "media_url_not_https",
        422,
        "`media.url` is not an https URL (Sinch fetches the media itself).",
    ),
    ProblemKind(
        "media_url_invalid",
        422,
        "`media.url` is not a URL with a valid host.",
    ),
    ProblemKind(
        "media_url_private",
        422,
        "`media.url` points at a private, loopback or link-local address.",
    ),
    ProblemKind(
        "media_text_too_long",
        422,
        "`media.message` or `media.subject` is longer than Sinch takes.",
    ),
    ProblemKind(
        "media_unreachable",
        422,
        "With SMSGW_MMS_CHECK_MEDIA, the media's host did not answer for it.",
    ),
    ProblemKind(
        "media_length_unknown",
        422,
        "With SMSGW_MMS_CHECK_MEDIA, the media has no `Content-Length` (Sinch refuses it).",
    ),
    ProblemKind(
        "media_type_unsupported",
        422,
        "With SMSGW_MMS_CHECK_MEDIA, the media's type is not one Sinch sends.",
    ),
    ProblemKind(
        "binary_body_invalid",
        422,
        "`binary.body` is not base64.",
    ),
    ProblemKind(
        "binary_udh_invalid",
        422,
        "`binary.udh` is not hex octets led by their length.",
    ),
    ProblemKind(
        "binary_too_long",
        422,
        "The binary payload needs more than one part and its UDH does not say how it is split.",
    ),
    ProblemKind(
        "parameters_not_supported",
        422,
        "`parameters` (templating) applies to text messages only.",
    ),
    ProblemKind("invalid_policy", 422, "A protection policy document has an unreadable entry."),
    ProblemKind("invalid_region", 422, "`region` is not a region libphonenumber knows."),
    ProblemKind("sender_empty", 422, "`from` is empty."),
    ProblemKind("sender_too_long", 422, "`from` is too long for a number or an alphanumeric id."),
    ProblemKind("sender_invalid_characters", 422, "`from` holds characters no sender id may hold."),
    ProblemKind("short_code_not_allowed", 422, "`from` is a short code, which is not allowed."),
    ProblemKind(
        "sender_not_allowed",
        422,
        "`from` is valid but not a sender this gateway may use; omit it for the default.",
    ),
    ProblemKind(
        "sender_of_another_tenant",
        422,
        "`from` (or the default sender) is a number assigned to another tenant, whose replies "
        "and STOPs it carries; send from your tenant's numbers or unassigned ones.",
    ),
    ProblemKind(
        "sender_required",
        422,
        "No `from`, no default sender configured and no default originator on the Sinch plan.",
    ),
    ProblemKind(
        "invalid_parameters", 422, "Several `parameters` are refused, for different reasons."
    ),
    ProblemKind(
        "parameter_recipient_unknown", 422, "A `parameters` key names no recipient in `to`."
    ),
    ProblemKind(
        "duplicate_parameter_recipient", 422, "Two `parameters` keys name the same number."
    ),
    ProblemKind(
        "parameter_value_missing",
        422,
        "A `${name}` in the body has no value for some recipient and no `default`.",
    ),
    ProblemKind(
        "callbacks_not_configured",
        422,
        "`callback_url` was given but status callbacks are not configured on this gateway.",
    ),
    ProblemKind("callback_url_scheme", 422, "`callback_url` is not http or https."),
    ProblemKind("callback_url_host", 422, "`callback_url` has no valid host or port."),
    ProblemKind(
        "callback_target_private",
        422,
        "`callback_url` points at a private, loopback or link-local address.",
    ),
    ProblemKind("request_headers_too_large", 431, "The request headers are larger than the limit."),
    ProblemKind(
        "rate_limited",
        429,
        "Too many requests in the current window; retry after `Retry-After` seconds.",
    ),
    ProblemKind(
        "internal_error", 500, "The gateway failed unexpectedly; the request id is in its log."
    ),
    ProblemKind(
        "send_failed",
        500,
        "POST /send-sms: Sinch did not accept the message in time, or it ended unsent; the "
        "message stays stored and may still be sent after a time-out.",
    ),
    ProblemKind(
        "database_unavailable",
        503,
        "The database cannot be reached; nothing was stored. Retry after `Retry-After`.",
    ),
    ProblemKind(
        "sinch_unavailable",
        503,
        "Cancelling needs Sinch's word on an earlier send attempt and Sinch cannot be asked "
        "now; nothing changed. Retry after `Retry-After`.",
    ),
    ProblemKind(
        "not_ready", 503, "The gateway is not ready: database unreachable or schema not at head."
    ),
)

PROBLEM_KINDS: Final[dict[str, ProblemKind]] = {kind.code: kind for kind in _KINDS}
PROBLEM_CODES: Final[tuple[str, ...]] = tuple(PROBLEM_KINDS)

# Codes of one failing field that are not problem codes of their own: the reasons a number or a
# sender is refused, and the generic rules a field can break (Pydantic's own codes are mapped
# to these, so callers never see a library's internals).
_FIELD_ONLY: Final[dict[str, str]] = {
    **{
        refusal.value: f"The number is refused: {refusal.value.replace('_', ' ')}."
        for refusal in PhoneRefusal
    },
    **{
        refusal.value: f"The sender is refused: {refusal.value.replace('_', ' ')}."
        for refusal in SenderRefusal
    },
    "required": "The field is required.",
    "unknown_field": "The field is not part of this request.",
    "invalid_type": "The value is of the wrong type (e.g. a number where text is expected).",
    "invalid_format": "The text does not have the required format (pattern, date, UUID, ...).",
    "invalid_length": "The text or list is shorter or longer than allowed.",
    "out_of_range": "The number is smaller or larger than allowed.",
    "invalid_choice": "The value is not one of the allowed values.",
    "invalid_url": "The value is not a valid absolute http(s) URL.",
    "timezone_required": "The date-time needs a UTC offset (e.g. `Z` or `+02:00`).",
    "invalid_value": "The value is invalid.",
}
FIELD_CODES: Final[dict[str, str]] = {
    **{kind.code: kind.meaning for kind in _KINDS if kind.status in (400, 422)},
    **_FIELD_ONLY,
}

# Pydantic error types → our field codes; anything not listed and not ours is `invalid_value`.
_PYDANTIC_CODES: Final[dict[str, str]] = {
    "missing": "required",
    "extra_forbidden": "unknown_field",
    "string_pattern_mismatch": "invalid_format",
    "string_too_short": "invalid_length",
    "string_too_long": "invalid_length",
    "too_short": "invalid_length",
    "too_long": "invalid_length",
    "greater_than": "out_of_range",
    "greater_than_equal": "out_of_range",
    "less_than": "out_of_range",
    "less_than_equal": "out_of_range",
    "literal_error": "invalid_choice",
    "enum": "invalid_choice",
    "timezone_aware": "timezone_required",
    "json_invalid": "malformed_json",
    "value_error": "invalid_value",
}


def field_code(pydantic_type: str) -> str:
    """Our code for one field that failed validation, from Pydantic's error type, or the
    type itself when it is a code of ours (our validators raise those)."""
    if pydantic_type in _PYDANTIC_CODES:
        return _PYDANTIC_CODES[pydantic_type]
    if pydantic_type in FIELD_CODES:
        return pydantic_type
    if pydantic_type.startswith("url_"):
        return "invalid_url"
    if pydantic_type.startswith(("datetime_", "date_", "time_", "uuid_", "timezone_")):
        return "invalid_format"
    if pydantic_type.endswith(("_type", "_parsing")) or "_from_" in pydantic_type:
        return "invalid_type"
    return "invalid_value"
