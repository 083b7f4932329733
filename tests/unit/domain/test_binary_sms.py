"""Binary SMS sizing: 140 octets a part with the UDH; longer only with a concatenation UDH."""

from __future__ import annotations

import base64
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsgateway.domain.binary_sms import (
    BinaryTooLong,
    InvalidBinaryBody,
    InvalidUdh,
    has_concatenation,
    parse_udh,
    prepare_binary,
)
from smsgateway.domain.errors import TooManySegments

CONCAT_8 = "050003CC0201"  # IEI 00: 8-bit reference CC, 2 parts, part 1
CONCAT_16 = "0608040001 0201".replace(" ", "")  # IEI 08: 16-bit reference
PORTS = "0605040B8423F0"  # IEI 05: application ports, no concatenation


def b64(payload: bytes) -> str:
    return base64.b64encode(payload).decode()


@given(udh=st.sampled_from([CONCAT_8, CONCAT_16, PORTS]), data=st.data())
def test_a_payload_that_fits_one_part_is_one_segment(udh: str, data: st.DataObject) -> None:
    room = 140 - len(bytes.fromhex(udh))
    payload = data.draw(st.binary(min_size=1, max_size=room))
    content = prepare_binary(b64(payload), udh, max_segments=255)
    assert (content.segments, content.payload_octets) == (1, len(payload))
    assert content.udh == udh.lower()


@given(payload=st.binary(min_size=135, max_size=2000))
def test_a_longer_payload_needs_a_concatenation_udh(payload: bytes) -> None:
    room = 140 - 6
    if len(payload) <= room:
        return
    content = prepare_binary(b64(payload), CONCAT_8, max_segments=255)
    assert content.segments == math.ceil(len(payload) / room)
    with pytest.raises(BinaryTooLong):
        prepare_binary(b64(payload), PORTS, max_segments=255)


def test_segments_over_the_limit_are_refused() -> None:
    with pytest.raises(TooManySegments) as refused:
        prepare_binary(b64(b"x" * 400), CONCAT_8, max_segments=2)
    assert (refused.value.segments, refused.value.field) == (3, "binary.body")


@pytest.mark.parametrize("body", ["", "====", "not base64", "SGVsbG8", "SGVsbG8=\n", "é"])
def test_a_body_that_is_not_base64_is_refused(body: str) -> None:
    with pytest.raises(InvalidBinaryBody):
        prepare_binary(body, CONCAT_8, max_segments=10)


@pytest.mark.parametrize("udh", ["", "zz", "050003CC02", "0500", "01", "0300030102", "FF" * 140])
def test_a_malformed_udh_is_refused(udh: str) -> None:
    with pytest.raises(InvalidUdh):
        parse_udh(udh)


def test_concatenation_is_found_among_other_elements() -> None:
    assert has_concatenation(bytes.fromhex("0B0504158200000003CC0201"))
    assert not has_concatenation(bytes.fromhex(PORTS))
