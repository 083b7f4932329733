"""Prometheus metrics by message kind (text, media, binary) and of the MMS media check."""

from __future__ import annotations

from smsgateway.observability.metric_types import Counter

MESSAGES_ACCEPTED_BY_KIND = Counter(
    "smsgw_messages_accepted_by_kind_total",
    "Messages stored and answered 202 Accepted, by kind (text, media, binary).",
    ["kind"],
)
MESSAGES_SENT_BY_KIND = Counter(
    "smsgw_dispatch_messages_sent_by_kind_total",
    "Messages handed to Sinch (Sinch accepted the batch), by kind (text, media, binary).",
    ["kind"],
)
MEDIA_CHECKS = Counter(
    "smsgw_mms_media_checks_total",
    "MMS media URLs checked before accepting (SMSGW_MMS_CHECK_MEDIA), by outcome code.",
    ["outcome"],
)
