"""MMS rules: where Sinch sends MMS from and to, which media URLs, how long the texts."""

from __future__ import annotations

import pytest

from smsgateway.domain.media import (
    MediaContent,
    MediaTextTooLong,
    MediaUrlRefused,
    MmsDestinationNotSupported,
    MmsNotAvailableInRegion,
    check_media_content,
    check_mms_route,
    media_url_refusal,
)


@pytest.mark.parametrize("region", ["eu", "au", "br", "ca"])
def test_mms_is_sent_from_region_us_only(region: str) -> None:
    check_mms_route("us", [(0, "+12025550143", "US")])
    with pytest.raises(MmsNotAvailableInRegion) as refused:
        check_mms_route(region, [(0, "+12025550143", "US")])
    assert (refused.value.code, refused.value.field) == ("mms_not_available_in_region", "media")


def test_mms_goes_to_us_ca_au_and_pr_only() -> None:
    served = [(0, "+1", "US"), (1, "+1", "CA"), (2, "+61", "AU"), (3, "+1787", "PR")]
    check_mms_route("us", served)
    with pytest.raises(MmsDestinationNotSupported) as refused:
        check_mms_route("us", [*served, (4, "+18765550100", "JM")])
    assert (refused.value.code, refused.value.field) == ("mms_destination_not_supported", "to.4")


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://media.example.com/cat.jpg", None),
        ("https://media.example.com:8443/a.png?x=1", None),
        ("http://media.example.com/cat.jpg", "media_url_not_https"),
        ("ftp://media.example.com/cat.jpg", "media_url_not_https"),
        ("https:///cat.jpg", "media_url_invalid"),
        ("https://media.example.com:99999/cat.jpg", "media_url_invalid"),
        ("https://127.0.0.1/cat.jpg", "media_url_private"),
        ("https://[::1]/cat.jpg", "media_url_private"),
        ("https://192.168.1.2/cat.jpg", "media_url_private"),
        ("https://169.254.169.254/latest", "media_url_private"),
        ("https://localhost/cat.jpg", "media_url_private"),
        ("https://printer.local/cat.jpg", "media_url_private"),
        ("https://[::ffff:10.0.0.1]/cat.jpg", "media_url_private"),
        ("https://example.com/" + "a" * 2048, "media_url_invalid"),
    ],
)
def test_media_urls(url: str, code: str | None) -> None:
    refusal = media_url_refusal(url)
    assert (None if refusal is None else refusal[0]) == code


def test_private_hosts_can_be_allowed_but_not_other_schemes() -> None:
    assert media_url_refusal("https://127.0.0.1/a.jpg", allow_private=True) is None
    assert media_url_refusal("http://127.0.0.1/a.jpg", allow_private=True) is not None


def test_texts_within_sinch_limits() -> None:
    url = "https://media.example.com/cat.jpg"
    check_media_content(MediaContent(url, message="m" * 5000, subject="s" * 80))
    with pytest.raises(MediaTextTooLong) as subject:
        check_media_content(MediaContent(url, subject="s" * 81))
    assert subject.value.field == "media.subject"
    with pytest.raises(MediaTextTooLong) as message:
        check_media_content(MediaContent(url, message="m" * 5001))
    assert message.value.field == "media.message"
    with pytest.raises(MediaUrlRefused):
        check_media_content(MediaContent("http://media.example.com/cat.jpg"))
