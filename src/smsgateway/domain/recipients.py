"""A list of recipients, normalised: each entry accepted, refused (with why) or a duplicate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from smsgateway.domain.errors import (
    InvalidPhoneNumber,
    NoRecipients,
    RecipientsRefused,
    TooManyRecipients,
)
from smsgateway.domain.phone import PhoneNumber, parse_phone_number

MAX_RECIPIENTS: Final = 1000
"""Recipients in one Sinch batch (the ``to`` array holds 1 to 1000)."""


@dataclass(frozen=True, slots=True)
class AcceptedRecipient:
    """The first entry for a number: ``index`` into the input, what was written, the number."""

    index: int
    raw: str
    number: PhoneNumber


@dataclass(frozen=True, slots=True)
class RefusedRecipient:
    """An entry refused: ``code`` is a ``PhoneRefusal`` value, ``message`` says it in words."""

    index: int
    raw: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class DuplicateRecipient:
    """An entry dropped because an earlier one (``first_index``) is the same number."""

    index: int
    raw: str
    e164: str
    first_index: int


@dataclass(frozen=True, slots=True)
class RecipientList:
    """The outcome for every input entry, each list in input order."""

    accepted: tuple[AcceptedRecipient, ...]
    refused: tuple[RefusedRecipient, ...]
    duplicates: tuple[DuplicateRecipient, ...]

    @property
    def numbers(self) -> tuple[PhoneNumber, ...]:
        """The distinct accepted numbers, in input order."""
        return tuple(recipient.number for recipient in self.accepted)

    @property
    def e164s(self) -> tuple[str, ...]:
        """The distinct accepted numbers in E.164, in input order (Sinch's ``to``)."""
        return tuple(recipient.number.e164 for recipient in self.accepted)

    @property
    def duplicates_removed(self) -> int:
        """How many entries were dropped as repeats of an earlier one."""
        return len(self.duplicates)

    def raise_if_refused(self, *, allow_partial: bool = False, field: str = "to") -> None:
        """Raise ``RecipientsRefused`` if any entry was refused (or, with ``allow_partial``,
        only if none was accepted)."""
        if self.refused and (not allow_partial or not self.accepted):
            raise RecipientsRefused(self.refused, accepted=len(self.accepted), field=field)


def normalise_recipients(
    raws: Sequence[str],
    *,
    region: str | None = None,
    refuse_fixed_line: bool = False,
    max_recipients: int = MAX_RECIPIENTS,
    field: str = "to",
) -> RecipientList:
    """Parse every entry (as ``phone.parse_phone_number``) and drop repeats of the same number.

    The limit counts entries as given, before repeats are dropped, so no caller can make us
    parse more than ``max_recipients`` numbers. Raises ``NoRecipients`` or ``TooManyRecipients``
    for the list as a whole; a refused entry is reported, not raised (see ``raise_if_refused``).
    """
    if not raws:
        raise NoRecipients(field=field)
    if len(raws) > max_recipients:
        raise TooManyRecipients(count=len(raws), max_recipients=max_recipients, field=field)
    accepted: list[AcceptedRecipient] = []
    refused: list[RefusedRecipient] = []
    duplicates: list[DuplicateRecipient] = []
    first_seen: dict[str, int] = {}
    for index, raw in enumerate(raws):
        try:
            number = parse_phone_number(
                raw, region=region, refuse_fixed_line=refuse_fixed_line, field=f"{field}[{index}]"
            )
        except InvalidPhoneNumber as exc:
            refused.append(RefusedRecipient(index, raw, exc.code, exc.message))
            continue
        first_index = first_seen.setdefault(number.e164, index)
        if first_index == index:
            accepted.append(AcceptedRecipient(index, raw, number))
        else:
            duplicates.append(DuplicateRecipient(index, raw, number.e164, first_index))
    return RecipientList(tuple(accepted), tuple(refused), tuple(duplicates))
