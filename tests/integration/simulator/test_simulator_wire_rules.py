"""The simulator's pure wire rules: callback signing and message-part counting."""

from __future__ import annotations

import pytest

from smsgateway.simulator.encoding import count_parts
from smsgateway.simulator.ids import CROCKFORD_ALPHABET, new_id
from smsgateway.simulator.signing import sign


def test_signing_matches_the_published_test_vector() -> None:
    body = (
        b'{"at":"2025-01-13T09:22:40.914Z","batch_id":"01JHFFHQ0P99JPPNQPJDV7JTBP",'
        b'"client_reference":"a client reference","code":0,'
        b'"operator_status_at":"2025-01-13T09:22:00Z","recipient":"33662162466",'
        b'"status":"Delivered","type":"recipient_delivery_report_sms"}'
    )

    signature = sign(
        body, secret="SMSWebhooksSecret", nonce="01JHFFHWYY7HSS4FWTMDTQEK8V", timestamp="1736760161"
    )

    assert signature == "ZoHei66PPN/kZjw7hFVfGhJOnml3iGNCMWoyQVcE5o0="


@pytest.mark.parametrize(
    ("text", "encoding", "units", "parts"),
    [
        ("", "GSM", 0, 1),
        ("{}", "GSM", 4, 1),
        ("\f", "GSM", 2, 1),
        ("a" * 159 + "€", "GSM", 161, 2),
        ("é" * 161, "GSM", 161, 2),
        ("ê", "UNICODE", 1, 1),
        ("😀", "UNICODE", 2, 1),
        ("a" * 134, "GSM", 134, 1),
    ],
)
def test_count_parts(text: str, encoding: str, units: int, parts: int) -> None:
    count = count_parts(text)

    assert (count.encoding, count.units, count.parts) == (encoding, units, parts)


def test_ids_are_26_crockford_characters_led_by_the_time() -> None:
    first, second = new_id(1_700_000_000.0), new_id(1_700_000_000.001)

    assert len(first) == 26
    assert set(first) <= set(CROCKFORD_ALPHABET)
    assert first[:10] < second[:10]
