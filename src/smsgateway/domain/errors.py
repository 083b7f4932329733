"""Refusals raised by the message domain, each with a stable machine code.

The codes are part of the public API (they reach callers in problem+json bodies), so they never
change once released. HTTP statuses are chosen in ``api/problems.py``, never here.

```
DomainError                       code varies; message; field (the input it is about, or None)
├── BodyError
│   ├── EmptyBody                 empty_body
│   ├── InvalidCharacter          invalid_character (position, character)
│   ├── BodyTooLong               body_too_long (characters, max_characters)
│   └── TooManySegments           too_many_segments (segments, max_segments)
├── AddressError
│   ├── InvalidPhoneNumber        a PhoneRefusal: too_short, too_long, invalid_length,
│   │                             invalid_country_code, missing_country_code, not_a_number,
│   │                             invalid_for_region, invalid_number, cannot_receive_sms
│   ├── InvalidSender             a SenderRefusal: sender_empty, sender_too_long,
│   │                             sender_invalid_characters, short_code_not_allowed
│   ├── InvalidRegion             invalid_region (the default region for national numbers)
│   ├── SenderNotAllowed          sender_not_allowed (a valid sender this gateway may not use)
│   └── SenderRequired            sender_required (no sender, and the plan has no default)
├── RecipientListError
│   ├── NoRecipients              no_recipients
│   ├── TooManyRecipients         too_many_recipients (count, max_recipients)
│   └── RecipientsRefused         invalid_recipients (refused: index, raw, code, message each),
│                                 or the refusals' one code when it is a policy's:
│                                 country_not_allowed, number_type_not_allowed, velocity_limited
├── SpendCapReached               spend_cap_reached (the tenant's daily or monthly cap)
├── ParametersRefused             the refusals' one code, else invalid_parameters (refusals:
│                                 field, code, message each: parameter_recipient_unknown,
│                                 duplicate_parameter_recipient, invalid_phone_number,
│                                 invalid_character, parameter_value_missing)
└── PriceTableError               invalid_price_table
```
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from smsgateway.domain.recipients import RefusedRecipient


class DomainError(Exception):
    """A refusal of caller input; ``code`` is stable, ``message`` is for humans."""

    default_code: ClassVar[str] = "domain_error"
    retry_after: int | None = None
    """Seconds after which the same request may succeed (sent as Retry-After), if it can."""

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.code: str = code if code is not None else self.default_code
        self.message = message
        self.field = field

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class BodyError(DomainError):
    """The message text cannot be sent as given."""


class EmptyBody(BodyError):
    """The body is empty or only whitespace."""

    default_code = "empty_body"

    def __init__(self, *, field: str | None = "body") -> None:
        super().__init__("The message body is empty.", field=field)


class InvalidCharacter(BodyError):
    """The body holds a control character (other than tab, CR, LF, form feed) or a lone
    surrogate."""

    default_code = "invalid_character"

    def __init__(self, *, position: int, character: str, field: str | None = "body") -> None:
        super().__init__(
            f"{'The message body' if field in (None, 'body') else 'The text'} holds the "
            f"character U+{ord(character):04X} at position "
            f"{position}, which cannot be sent.",
            field=field,
        )
        self.position = position
        self.character = character


class BodyTooLong(BodyError):
    """The body has more characters than Sinch accepts in one batch."""

    default_code = "body_too_long"

    def __init__(self, *, characters: int, max_characters: int, field: str | None = "body") -> None:
        super().__init__(
            f"The message body has {characters} characters; at most {max_characters} are allowed.",
            field=field,
        )
        self.characters = characters
        self.max_characters = max_characters


class TooManySegments(BodyError):
    """The body would be sent as more parts than allowed; ``segments`` is what it would cost."""

    default_code = "too_many_segments"

    def __init__(self, *, segments: int, max_segments: int, field: str | None = "body") -> None:
        super().__init__(
            f"The message would be sent as {segments} parts; at most {max_segments} are allowed.",
            field=field,
        )
        self.segments = segments
        self.max_segments = max_segments


class AddressError(DomainError):
    """A recipient or sender address is refused."""


class InvalidPhoneNumber(AddressError):
    """A phone number is refused; ``code`` is the reason (a ``phone.PhoneRefusal`` value)."""

    default_code = "invalid_number"


class InvalidSender(AddressError):
    """A sender id is refused; ``code`` is the reason (a ``phone.SenderRefusal`` value)."""

    default_code = "invalid_sender"


class InvalidRegion(AddressError):
    """The region given for reading national numbers is not one libphonenumber knows."""

    default_code = "invalid_region"


class SenderNotAllowed(AddressError):
    """A well-formed sender that is neither SINCH_NUMBER nor one of the allowed senders."""

    default_code = "sender_not_allowed"

    def __init__(self, sender: str, *, field: str | None = "from") -> None:
        super().__init__(
            f"The sender {sender!r} is not allowed here; omit 'from' to use the default sender.",
            field=field,
        )
        self.sender = sender


class SenderRequired(AddressError):
    """No sender was given, none is configured, and the Sinch plan has no declared default
    originator: Sinch would refuse the batch."""

    default_code = "sender_required"

    def __init__(self, *, field: str | None = "from") -> None:
        super().__init__(
            "A sender is required: name one in 'from'; this gateway has no default sender "
            "(SINCH_NUMBER) and its Sinch plan no declared default originator.",
            field=field,
        )


class RecipientListError(DomainError):
    """The list of recipients as a whole is refused."""


class NoRecipients(RecipientListError):
    """The list of recipients is empty."""

    default_code = "no_recipients"

    def __init__(self, *, field: str | None = "to") -> None:
        super().__init__("At least one recipient is required.", field=field)


class TooManyRecipients(RecipientListError):
    """The list holds more entries than one Sinch batch accepts."""

    default_code = "too_many_recipients"

    def __init__(self, *, count: int, max_recipients: int, field: str | None = "to") -> None:
        super().__init__(
            f"{count} recipients were given; at most {max_recipients} are allowed.", field=field
        )
        self.count = count
        self.max_recipients = max_recipients


POLICY_CODES = frozenset({"country_not_allowed", "number_type_not_allowed", "velocity_limited"})
"""Recipient refusals that are the protection policy's, not the number's fault."""


class RecipientsRefused(RecipientListError):
    """Some (or all) recipients are refused; ``refused`` says which, by index, and why.

    The code is ``invalid_recipients``, or the refusals' one code when they share a policy code
    (a tenant locked to US and CA sees ``country_not_allowed`` for a Swedish number)."""

    default_code = "invalid_recipients"

    def __init__(
        self,
        refused: Sequence[RefusedRecipient],
        *,
        accepted: int,
        field: str | None = "to",
        retry_after: int | None = None,
    ) -> None:
        codes = {entry.code for entry in refused}
        policy_code = codes.pop() if len(codes) == 1 and codes <= POLICY_CODES else None
        if policy_code is not None:
            message = (
                f"{len(refused)} recipients are refused by this sender's policy."
                if len(refused) > 1
                else "A recipient is refused by this sender's policy."
            )
        elif accepted:
            message = f"{len(refused)} recipients are invalid."
        else:
            message = "No recipient is valid."
        super().__init__(message, field=field, code=policy_code)
        self.refused: tuple[RefusedRecipient, ...] = tuple(refused)
        self.accepted = accepted
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class ParameterRefusal:
    """One refused part of ``parameters``: ``field`` is ``parameters.<name>[.<key>]``."""

    field: str
    code: str
    message: str


class ParametersRefused(DomainError):
    """Keys or values of ``parameters`` are refused; ``refusals`` lists each one.

    The code is the refusals' code when they share one, else ``invalid_parameters``.
    """

    default_code = "invalid_parameters"

    def __init__(self, refusals: Sequence[ParameterRefusal]) -> None:
        codes = {refusal.code for refusal in refusals}
        first = refusals[0]
        message = (
            first.message if len(refusals) == 1 else f"{len(refusals)} parameters are invalid."
        )
        super().__init__(
            message,
            field=first.field,
            code=codes.pop() if len(codes) == 1 else self.default_code,
        )
        self.refusals: tuple[ParameterRefusal, ...] = tuple(refusals)


class SpendCapReached(DomainError):
    """The message would take the tenant past a daily or monthly spend cap; nothing was sent."""

    default_code = "spend_cap_reached"

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message, field="to")
        self.retry_after = retry_after


class PriceTableError(DomainError):
    """A price table cannot be parsed; ``field`` names the offending entry."""

    default_code = "invalid_price_table"
