"""The SSRF policy for callback URLs: IPv6 forms that wrap an IPv4 address are judged by it."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsgateway.domain.callback_targets import (
    TargetRefusal,
    check_callback_url,
    is_refused_address,
)

PRIVATE_V4 = ["10.0.0.1", "127.0.0.1", "169.254.169.254", "192.168.1.10", "100.64.0.1", "0.0.0.0"]


def wrappings(v4: ipaddress.IPv4Address) -> dict[str, str]:
    """Each IPv6 form that carries ``v4`` to a translator or tunnel."""
    value = int(v4)
    teredo_client = value ^ 0xFFFFFFFF  # Teredo stores the client address inverted
    teredo_server = 0x41D8C0A8 << 64
    return {
        "mapped": str(ipaddress.IPv6Address((0xFFFF << 32) | value)),
        "nat64": str(ipaddress.IPv6Address((0x64FF9B << 96) | value)),
        "6to4": str(ipaddress.IPv6Address((0x2002 << 112) | (value << 80) | 1)),
        "teredo": str(ipaddress.IPv6Address((0x20010000 << 96) | teredo_server | teredo_client)),
        "compatible": str(ipaddress.IPv6Address(value)),
    }


@pytest.mark.parametrize("private", PRIVATE_V4)
@pytest.mark.parametrize("form", ["mapped", "nat64", "6to4", "teredo", "compatible"])
def test_a_private_ipv4_address_in_an_ipv6_form_is_refused(private: str, form: str) -> None:
    literal = wrappings(ipaddress.IPv4Address(private))[form]

    assert is_refused_address(literal, allow_private=False)
    assert check_callback_url(f"https://[{literal}]/hook", allow_private=False) is (
        TargetRefusal.PRIVATE
    )
    assert check_callback_url(f"https://[{literal}]/hook", allow_private=True) is None


@pytest.mark.parametrize("form", ["mapped", "nat64", "6to4"])
def test_a_public_ipv4_address_in_a_translated_form_passes(form: str) -> None:
    literal = wrappings(ipaddress.IPv4Address("8.8.8.8"))[form]

    assert not is_refused_address(literal, allow_private=False)


def test_the_local_use_nat64_prefix_is_refused_whatever_it_carries() -> None:
    assert is_refused_address("64:ff9b:1::808:808", allow_private=False)
    assert is_refused_address("64:ff9b:1:ffff::1", allow_private=False)


@given(st.ip_addresses(v=4))
def test_every_wrapping_is_judged_as_the_ipv4_address_inside(v4: ipaddress.IPv4Address) -> None:
    refused = is_refused_address(str(v4), allow_private=False)
    for form, literal in wrappings(v4).items():
        # Teredo's own prefix (2001::/32) is not globally routable: refused whatever it carries.
        expected = True if form == "teredo" else refused
        assert is_refused_address(literal, allow_private=False) is expected, form


def test_a_global_ipv6_address_passes() -> None:
    assert not is_refused_address("2606:4700:4700::1111", allow_private=False)
