"""Prometheus metrics of the protection policies (destinations, velocity, spend).

``country`` is a libphonenumber region (about 250 of them, plus ``001`` for non-geographic
numbers), ``other`` for anything else, so the label set stays bounded whatever callers send.
"""

from __future__ import annotations

from typing import Final

import phonenumbers

from smsgateway.observability.metric_types import Counter

_KNOWN_REGIONS: Final = frozenset(phonenumbers.SUPPORTED_REGIONS) | {"001"}

POLICY_REFUSALS = Counter(
    "smsgw_protection_refusals_total",
    "Recipients refused by a protection policy, by reason (country_not_allowed, "
    "number_type_not_allowed, velocity_limited; spend_cap_reached counts messages) and country.",
    ["reason", "country"],
)
POLICY_MONITORED = Counter(
    "smsgw_protection_monitored_total",
    "Recipients sent to that a policy in monitor mode (or a monitored country) remarked on.",
    ["reason", "country"],
)
SPEND_THRESHOLD_REACHED = Counter(
    "smsgw_spend_threshold_reached_total",
    "Spend counters that crossed their warning threshold (spend.threshold_reached).",
    ["cap"],
)
COUNTER_FALLBACKS = Counter(
    "smsgw_protection_counter_fallbacks_total",
    "Messages whose velocity counters were taken in Postgres because the Redis configured for "
    "them (SMSGW_PROTECTION_COUNTERS_URL) could not be reached.",
)


def country_label(region: str) -> str:
    return region if region in _KNOWN_REGIONS else "other"
