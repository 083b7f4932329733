"""parameters: keys read as `to` is, sent in E.164, checked against the message's recipients."""

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsgateway.domain.errors import ParametersRefused
from smsgateway.domain.parameters import normalise_parameters, parameters_for, refuse_unmatched
from smsgateway.domain.recipients import normalise_recipients

ANN = "+14155550157"
BOB = "+14155550158"


def recipients(*raws: str, region: str | None = "US"):  # type: ignore[no-untyped-def]
    return normalise_recipients(list(raws), region=region)


def test_keys_are_normalised_like_to_with_the_message_region() -> None:
    to = recipients("(415) 555-0157", "415.555.0158")
    normalised = normalise_parameters(
        {"name": {"(415) 555-0157": "Ann", "+1 415 555 0158": "Bob", "default": "there"}},
        to,
        region="US",
    )
    assert normalised == {"name": {ANN: "Ann", BOB: "Bob", "default": "there"}}


def test_a_national_key_needs_the_region_as_to_does() -> None:
    with pytest.raises(ParametersRefused) as caught:
        normalise_parameters({"name": {"(415) 555-0157": "Ann"}}, recipients(ANN), region=None)
    assert caught.value.code == "invalid_phone_number"
    assert caught.value.field == "parameters.name.(415) 555-0157"


def test_a_key_for_a_number_not_in_to_is_refused() -> None:
    with pytest.raises(ParametersRefused) as caught:
        normalise_parameters({"name": {BOB: "Bob"}}, recipients(ANN), region="US")
    assert caught.value.code == "parameter_recipient_unknown"
    assert [r.field for r in caught.value.refusals] == [f"parameters.name.{BOB}"]


def test_two_keys_for_one_number_are_refused() -> None:
    with pytest.raises(ParametersRefused) as caught:
        normalise_parameters(
            {"name": {ANN: "Ann", "(415) 555-0157": "Annie"}}, recipients(ANN), region="US"
        )
    assert caught.value.code == "duplicate_parameter_recipient"
    assert caught.value.field == "parameters.name.(415) 555-0157"


def test_every_refused_key_is_listed_and_mixed_codes_give_invalid_parameters() -> None:
    with pytest.raises(ParametersRefused) as caught:
        normalise_parameters(
            {"a": {"nope": "x", BOB: "y"}, "b": {ANN: "ok", "default": "bell\x07"}},
            recipients(ANN),
            region="US",
        )
    assert caught.value.code == "invalid_parameters"
    assert [(r.field, r.code) for r in caught.value.refusals] == [
        ("parameters.a.nope", "invalid_phone_number"),
        (f"parameters.a.{BOB}", "parameter_recipient_unknown"),
        ("parameters.b.default", "invalid_character"),
    ]
    assert all(ANN not in r.message and BOB not in r.message for r in caught.value.refusals)


def test_a_key_of_a_duplicate_to_entry_names_its_recipient() -> None:
    to = recipients(ANN, "(415) 555-0157")
    assert normalise_parameters({"n": {"(415) 555-0157": "Ann"}}, to, region="US") == {
        "n": {ANN: "Ann"}
    }


def test_a_key_for_a_to_entry_refused_for_its_own_reason_follows_it_out() -> None:
    # The preview lists "12345" as refused in `to`; its key is not refused a second time.
    to = recipients(ANN, "12345")
    assert to.refused
    assert normalise_parameters({"n": {"12345": "x", ANN: "Ann"}}, to, region="US") == {
        "n": {ANN: "Ann"}
    }


def test_a_tab_in_a_value_is_fine_a_nul_is_not() -> None:
    assert normalise_parameters({"n": {"default": "a\tb"}}, recipients(ANN)) == {
        "n": {"default": "a\tb"}
    }
    with pytest.raises(ParametersRefused) as caught:
        normalise_parameters({"n\x00": {"default": "x"}}, recipients(ANN))
    assert caught.value.code == "invalid_character"


def test_only_sendable_recipients_keys_go_to_sinch() -> None:
    stored = {"name": {ANN: "Ann", BOB: "Bob", "default": "there"}, "code": {BOB: "42"}}
    assert parameters_for(stored, (ANN,)) == {
        "name": {ANN: "Ann", "default": "there"},
        "code": {},
    }


def test_a_key_stored_before_keys_were_normalised_is_sent_as_it_was() -> None:
    stored = {"name": {"(415) 555-0157": "Ann", BOB: "Bob"}}
    assert parameters_for(stored, (ANN,)) == {"name": {"(415) 555-0157": "Ann"}}


def test_a_placeholder_without_a_value_for_everyone_nor_a_default_is_refused() -> None:
    with pytest.raises(ParametersRefused) as caught:
        refuse_unmatched("Hi ${name}, ${code}", {"name": {ANN: "Ann"}, "code": {}}, (ANN, BOB))
    assert caught.value.code == "parameter_value_missing"
    assert [r.field for r in caught.value.refusals] == ["parameters.name", "parameters.code"]
    assert "1 recipient" in caught.value.refusals[0].message
    assert "2 recipient" in caught.value.refusals[1].message


def test_a_default_a_value_for_everyone_or_an_unknown_name_is_fine() -> None:
    refuse_unmatched("Hi ${name}", {"name": {"default": "there"}}, (ANN, BOB))
    refuse_unmatched("Hi ${name}", {"name": {ANN: "Ann", BOB: "Bob"}}, (ANN, BOB))
    refuse_unmatched("Costs ${price}", {"name": {}}, (ANN,))  # sent as written, as Sinch does
    refuse_unmatched("Hi there", {"name": {}}, (ANN,))


US_NUMBERS = st.integers(min_value=0, max_value=9999).map(lambda n: f"+1415555{n:04d}")
FORMATS = st.sampled_from(
    [
        phonenumbers.PhoneNumberFormat.E164,
        phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        phonenumbers.PhoneNumberFormat.NATIONAL,
    ]
)


@given(
    st.lists(
        st.tuples(US_NUMBERS, FORMATS, FORMATS), min_size=1, max_size=20, unique_by=lambda t: t[0]
    )
)
def test_any_written_form_of_a_recipient_keys_it_as_its_e164(
    entries: list[tuple[str, int, int]],
) -> None:
    def written(e164: str, form: int) -> str:
        return phonenumbers.format_number(phonenumbers.parse(e164), form)

    to = recipients(*(written(e164, to_form) for e164, to_form, _ in entries))
    keys = {written(e164, key_form): e164[-4:] for e164, _, key_form in entries}
    normalised = normalise_parameters({"n": keys}, to, region="US")
    assert normalised == {"n": {e164: e164[-4:] for e164, _, _ in entries}}
    assert set(normalised["n"]) == set(to.e164s)
