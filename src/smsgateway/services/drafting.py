"""Turn what a caller wrote into a message draft: numbers, sender, encoded body, cost.

No I/O: preview and accept both call ``draft_message``, so every message the gateway accepts
has passed exactly the checks that the preview shows.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from smsgateway.domain.compose import PreparedBody, count_rendered, prepare_body
from smsgateway.domain.destination_policy import (
    DestinationPolicy,
    PolicyHit,
    PolicyMode,
    parse_countries,
    parse_number_types,
    screen_recipients,
)
from smsgateway.domain.errors import SenderNotAllowed, SenderRequired
from smsgateway.domain.media import MediaContent
from smsgateway.domain.message_kind import ContentChoiceError
from smsgateway.domain.parameters import Parameters, normalise_parameters, refuse_unmatched
from smsgateway.domain.phone import Sender, parse_region, parse_sender
from smsgateway.domain.pricing import CostEstimate, PriceTable, estimate_cost, load_price_table
from smsgateway.domain.recipients import RecipientList, normalise_recipients
from smsgateway.services.media import BinaryInput, RichContent, draft_rich_content
from smsgateway.settings import Settings


@dataclass(frozen=True)
class MessagePolicy:
    """The gateway's rules for drafts, from settings."""

    default_region: str | None = None
    max_segments: int = 10
    refuse_fixed_line: bool = False
    default_sender: str | None = None
    allowed_senders: frozenset[str] = field(default_factory=frozenset)
    price_table: PriceTable | None = None
    # No sender and no default sender: refuse (the plan has no declared default originator).
    sender_required: bool = False
    # Where messages may go when the tenant has no policy of its own.
    destinations: DestinationPolicy = field(default_factory=DestinationPolicy)
    # MMS: only accounts in Sinch region us send it; media on private hosts only in tests.
    sinch_region: str = "us"
    allow_private_media: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> MessagePolicy:
        return cls(
            default_region=settings.default_region,
            max_segments=settings.max_segments,
            refuse_fixed_line=settings.refuse_fixed_line,
            default_sender=settings.sinch_number,
            allowed_senders=frozenset(settings.allowed_senders),
            price_table=_read_price_table(settings.price_table_file),
            sender_required=settings.sender_required,
            destinations=destinations_from_settings(settings),
            sinch_region=settings.sinch_region,
            allow_private_media=settings.mms_media_allow_private,
        )


def destinations_from_settings(settings: Settings) -> DestinationPolicy:
    """The gateway-wide destination policy (SMSGW_ALLOWED_COUNTRIES and the others)."""
    return DestinationPolicy(
        allowed_countries=parse_countries(settings.allowed_countries, field="allowed_countries"),
        blocked_countries=parse_countries(settings.blocked_countries, field="blocked_countries"),
        monitored_countries=parse_countries(
            settings.monitored_countries, field="monitored_countries"
        ),
        refused_types=parse_number_types(
            settings.refused_number_types, field="refused_number_types"
        ),
        mode=PolicyMode(settings.destination_policy_mode),
    )


@dataclass(frozen=True)
class DraftRequest:
    """What the caller asked for, as typed by the HTTP schema."""

    to: Sequence[str]
    body: str | None
    sender: str | None = None
    region: str | None = None
    smart_encoding: bool = False
    max_segments: int | None = None
    parameters: Mapping[str, Mapping[str, str]] | None = None
    # Instead of ``body``: an MMS or a binary message (the schema admits exactly one).
    media: MediaContent | None = None
    binary: BinaryInput | None = None


@dataclass(frozen=True)
class MessageDraft:
    """A checked message: every recipient's fate, the sender, the body as sent, the cost, and
    the per-recipient parameters keyed as ``to`` is sent (E.164). ``body`` is the text of a
    text message; ``content`` the MMS or binary content of the others."""

    recipients: RecipientList
    sender: Sender | None
    body: PreparedBody | None
    cost: CostEstimate | None
    parameters: Parameters | None = None
    # Recipients the destination policy refused or let through and recorded (monitor).
    policy_hits: tuple[PolicyHit, ...] = ()
    content: RichContent | None = None
    # With parameters filled in per recipient: the parts each (E.164) is sent.
    rendered_segments: Mapping[str, int] | None = None

    @property
    def stored_body(self) -> str:
        """The record's ``body``: the text as sent, the MMS text, or the binary base64."""
        return self._content.text if self.body is None else self.body.text

    @property
    def encoding(self) -> str:
        return self._content.encoding if self.body is None else self.body.encoding.value

    @property
    def segments(self) -> int:
        """The parts each recipient is sent; with parameters, the most any one is sent."""
        if self.rendered_segments:
            return max(self.rendered_segments.values())
        return self._content.segments if self.body is None else self.body.segments

    @property
    def total_segments(self) -> int:
        """The parts sent to all accepted recipients together, as Sinch bills them."""
        if self.rendered_segments is None:
            return self.segments * len(self.recipients.accepted)
        return sum(self.rendered_segments.values())

    @property
    def characters(self) -> int:
        if self.body is None:
            return self._content.characters
        return self.body.segmentation.characters

    @property
    def kind(self) -> str:
        return "text" if self.content is None else self.content.kind.value

    @property
    def _content(self) -> RichContent:
        assert self.content is not None, "a draft has a text body or other content"
        return self.content


def draft_message(
    request: DraftRequest,
    policy: MessagePolicy,
    destinations: DestinationPolicy | None = None,
) -> MessageDraft:
    """Checks everything that can be checked without sending; raises ``DomainError``s.

    Refused recipients are reported in the draft, not raised: the preview lists them and the
    accept path refuses the message if there are any. ``destinations`` is the caller's
    destination policy (its tenant's, narrowed by its key's), else the gateway's.
    """
    region = parse_region(request.region) if request.region else policy.default_region
    max_segments = request.max_segments or policy.max_segments
    parsed = normalise_recipients(
        request.to, region=region, refuse_fixed_line=policy.refuse_fixed_line
    )
    screened = screen_recipients(parsed, destinations or policy.destinations)
    recipients = screened.recipients
    content = draft_rich_content(
        request.media,
        request.binary,
        recipients=recipients,
        parameters=request.parameters,
        sinch_region=policy.sinch_region,
        max_segments=max_segments,
        allow_private_media=policy.allow_private_media,
    )
    body = None
    if content is None:
        if request.body is None:
            raise ContentChoiceError([])
        body = prepare_body(
            request.body, smart_encoding=request.smart_encoding, max_segments=max_segments
        )
    sender = _resolve_sender(request.sender, region, policy)
    # Read against every valid number, so that a refused one is not also reported as a
    # parameter for an unknown recipient.
    parameters = (
        None if body is None else _normalise_parameters(request, parsed, region, policy, body.text)
    )
    rendered = (
        None
        if body is None or parameters is None
        else count_rendered(body, parameters, recipients.e164s, max_segments=max_segments)
    )
    segments = body.segments if body is not None else content.segments if content else 1
    cost = (
        estimate_cost(
            policy.price_table,
            segments=segments,
            recipients=recipients.numbers,
            segments_by_recipient=rendered,
        )
        if policy.price_table is not None
        else None
    )
    return MessageDraft(
        recipients=recipients,
        sender=sender,
        body=body,
        cost=cost,
        parameters=parameters,
        policy_hits=screened.hits,
        content=content,
        rendered_segments=rendered,
    )


def _resolve_sender(given: str | None, region: str | None, policy: MessagePolicy) -> Sender | None:
    if given is None:
        if policy.default_sender is None:
            if policy.sender_required:
                raise SenderRequired
            return None  # Sinch uses the service plan's default originator.
        return _parsed_sender(policy.default_sender, region)
    sender = _parsed_sender(given, region)
    allowed = {policy.default_sender, *policy.allowed_senders} - {None}
    if sender.value not in allowed and given not in allowed:
        raise SenderNotAllowed(sender.value)
    return sender


@functools.lru_cache(maxsize=1024)
def _parsed_sender(raw: str, region: str | None) -> Sender:
    # A gateway sends from a handful of senders, and parsing a number was 4 % of an accept's
    # CPU; the result is immutable, and a refusal (an exception) is not kept.
    return parse_sender(raw, region=region, field="from")


def _read_price_table(path: Path | None) -> PriceTable | None:
    return None if path is None else load_price_table(path.read_text(encoding="utf-8"))


def _normalise_parameters(
    request: DraftRequest,
    recipients: RecipientList,
    region: str | None,
    policy: MessagePolicy,
    body: str,
) -> Parameters | None:
    # Keys are numbers read exactly as `to` is: same region, same fixed-line rule.
    if request.parameters is None:
        return None
    parameters = normalise_parameters(
        request.parameters, recipients, region=region, refuse_fixed_line=policy.refuse_fixed_line
    )
    refuse_unmatched(body, parameters, recipients.e164s)
    return parameters
