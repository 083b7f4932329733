from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsgateway.domain.public_url import PublicUrlProblem, check_public_url, is_private_host


@pytest.mark.parametrize(
    "url",
    [
        "https://gw.example.com",
        "http://gw.example.com:8080/base",
        "https://203.0.113.7.nip.io",
        "https://8.8.8.8",
        "https://[2001:4860:4860::8888]/",
    ],
)
def test_a_public_http_url_passes(url: str) -> None:
    assert check_public_url(url) is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("gw.example.com", PublicUrlProblem.SCHEME),
        ("ftp://gw.example.com", PublicUrlProblem.SCHEME),
        ("https://", PublicUrlProblem.NO_HOST),
        ("https://gw.example.com:99999", PublicUrlProblem.NO_HOST),
        ("http://127.0.0.1:8000", PublicUrlProblem.PRIVATE),
        ("http://10.0.0.1", PublicUrlProblem.PRIVATE),
        ("http://172.16.5.4", PublicUrlProblem.PRIVATE),
        ("http://192.168.1.10", PublicUrlProblem.PRIVATE),
        ("http://169.254.169.254", PublicUrlProblem.PRIVATE),
        ("http://100.64.0.1", PublicUrlProblem.PRIVATE),
        ("http://0.0.0.0:8000", PublicUrlProblem.PRIVATE),
        ("http://[::1]:8000", PublicUrlProblem.PRIVATE),
        ("http://[fe80::1]", PublicUrlProblem.PRIVATE),
        ("http://[::ffff:10.0.0.1]", PublicUrlProblem.PRIVATE),
        ("http://localhost:8000", PublicUrlProblem.PRIVATE),
        ("http://gw.localhost", PublicUrlProblem.PRIVATE),
        ("https://gateway.local", PublicUrlProblem.PRIVATE),
        ("https://GATEWAY.LOCAL.", PublicUrlProblem.PRIVATE),
    ],
)
def test_what_sinch_cannot_reach_is_named(url: str, problem: PublicUrlProblem) -> None:
    assert check_public_url(url) is problem


def test_allowing_private_hosts_never_allows_a_wrong_scheme_or_no_host() -> None:
    assert check_public_url("http://10.0.0.1:8000", allow_private=True) is None
    assert check_public_url("https://gateway.local", allow_private=True) is None
    assert check_public_url("ftp://10.0.0.1", allow_private=True) is PublicUrlProblem.SCHEME
    assert check_public_url("https://", allow_private=True) is PublicUrlProblem.NO_HOST


@given(st.ip_addresses(v=4))
def test_an_ipv4_host_is_private_exactly_when_it_is_not_global_unicast(
    address: ipaddress.IPv4Address,
) -> None:
    expected = not address.is_global or address.is_multicast
    assert is_private_host(str(address)) is expected
    assert (check_public_url(f"https://{address}/") is PublicUrlProblem.PRIVATE) is expected


@given(st.from_regex(r"[a-z][a-z0-9-]{0,20}\.(com|net|org|io)", fullmatch=True))
def test_a_public_name_is_never_private(name: str) -> None:
    assert check_public_url(f"https://{name}") is None
