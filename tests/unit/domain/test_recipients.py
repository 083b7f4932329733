"""Normalising a list of recipients: per-entry outcomes, duplicates, list limits."""

import pytest

from smsgateway.domain.errors import NoRecipients, RecipientsRefused, TooManyRecipients
from smsgateway.domain.phone import NumberType
from smsgateway.domain.recipients import MAX_RECIPIENTS, normalise_recipients

US_EITHER = "+12015550123"
SE_MOBILE = "+46701234567"
SE_FIXED = "+468123456"


def test_each_entry_is_accepted_refused_or_a_duplicate_by_index() -> None:
    result = normalise_recipients(
        ["+1 201 555 0123", "hello", "(201) 555-0123", SE_MOBILE, "+15551234567", "201.555.0123"],
        region="US",
    )
    assert [(r.index, r.number.e164) for r in result.accepted] == [(0, US_EITHER), (3, SE_MOBILE)]
    assert [(r.index, r.code) for r in result.refused] == [
        (1, "not_a_number"),
        (4, "invalid_number"),
    ]
    assert [(d.index, d.first_index, d.e164) for d in result.duplicates] == [
        (2, 0, US_EITHER),
        (5, 0, US_EITHER),
    ]
    assert result.duplicates_removed == 2
    assert result.e164s == (US_EITHER, SE_MOBILE)
    assert [n.region for n in result.numbers] == ["US", "SE"]
    assert result.accepted[0].raw == "+1 201 555 0123"
    assert result.refused[0].raw == "hello"
    assert result.refused[0].message == "The number is not a phone number."


def test_accepted_entries_carry_region_and_type() -> None:
    (recipient,) = normalise_recipients(["0701 234 567"], region="SE").accepted
    assert (recipient.number.region, recipient.number.number_type) == ("SE", NumberType.MOBILE)


def test_fixed_lines_are_refused_when_asked() -> None:
    result = normalise_recipients([SE_FIXED, SE_MOBILE], refuse_fixed_line=True)
    assert [(r.index, r.code) for r in result.refused] == [(0, "cannot_receive_sms")]
    assert result.e164s == (SE_MOBILE,)


def test_an_empty_list_is_refused() -> None:
    with pytest.raises(NoRecipients) as caught:
        normalise_recipients([])
    assert (caught.value.code, caught.value.field) == ("no_recipients", "to")


def test_at_most_1000_entries() -> None:
    numbers = [f"+4670123{i:04d}" for i in range(MAX_RECIPIENTS + 1)]
    result = normalise_recipients(numbers[:MAX_RECIPIENTS])
    assert len(result.accepted) == 1000
    assert result.refused == ()
    with pytest.raises(TooManyRecipients) as caught:
        normalise_recipients(numbers)
    assert (caught.value.code, caught.value.count, caught.value.max_recipients) == (
        "too_many_recipients",
        1001,
        1000,
    )


def test_the_limit_counts_entries_before_duplicates_are_dropped() -> None:
    with pytest.raises(TooManyRecipients):
        normalise_recipients([SE_MOBILE] * 1001)


def test_raise_if_refused_strict_and_partial() -> None:
    mixed = normalise_recipients([SE_MOBILE, "nope"])
    with pytest.raises(RecipientsRefused) as caught:
        mixed.raise_if_refused()
    assert caught.value.code == "invalid_recipients"
    assert [(r.index, r.code) for r in caught.value.refused] == [(1, "not_a_number")]
    mixed.raise_if_refused(allow_partial=True)  # one is enough when partial sends are allowed

    none_valid = normalise_recipients(["nope", "+1"])
    with pytest.raises(RecipientsRefused) as caught:
        none_valid.raise_if_refused(allow_partial=True)
    assert caught.value.accepted == 0

    normalise_recipients([SE_MOBILE]).raise_if_refused()


def test_refusals_keep_their_index_and_the_list_field() -> None:
    recipients = normalise_recipients([SE_MOBILE, SE_MOBILE, "x"], field="recipients")
    with pytest.raises(RecipientsRefused) as caught:
        recipients.raise_if_refused(field="recipients")
    assert caught.value.field == "recipients"
    assert caught.value.refused[0].index == 2
