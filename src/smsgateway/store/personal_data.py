"""Redaction and deletion of personal data past its tenant's retention window.

Where personal data lives, and what happens to each copy:

- ``sms_log``: ``body`` becomes '' (the text, an MMS's text, a binary payload), ``parameters``
  (keyed by number) NULL, an MMS's ``url`` and ``subject`` go; ``redacted_at`` is set.
- ``sms_recipient.msisdn``, ``sms_event.recipient``, ``protection_event.recipient``: masked
  to the country code (``domain.retention``); numbers inside ``sms_event.detail`` (the Sinch
  report as received) and the message's ``callback_event.payload`` are masked too.
- ``inbound_message``: ``body`` NULL, ``sender`` masked, the raw ``payload``'s body dropped
  and its numbers masked; tenants' ``callback_event`` rows (``message.inbound``,
  ``opt_out.changed``) likewise once delivered or given up.
- Deleting a message cascades to its recipients, events, callbacks and their attempts,
  idempotency keys and protection events.
- Kept on purpose: ``opt_out`` (the record that a number withdrew consent must outlive the
  messages), the receiving number of an inbound message (it is ours), ``unmatched_report``
  (deleted after SMSGW_UNMATCHED_REPORT_RETENTION_DAYS by ``store.retention``).

A message's age counts from its last change (``updated_at``: the time it reached its final
status, or for one that never did, its last status change), not from its acceptance: the
window runs from when the gateway last needed the data. A message is touched once nothing is
pending for it: no outbox row (queued or in flight), no callback still pending, and no report
awaited. A report is awaited while the message is not final and its ``awaiting_report`` row
is before Sinch's expiry plus reconciliation's grace (``domain.reconciliation``), and always
while a reconciler holds the row under a live lease. So a message that never became final
(no report ever came, reconciliation gave up or was off, the outbox row is gone) is redacted
and deleted like the others, once its wait is over.

Every statement takes at most ``limit`` rows of one tenant, oldest first, ``FOR UPDATE SKIP
LOCKED``: sweepers in several processes share the work, and a row another sweeper has just
redacted fails the re-checked ``redacted_at IS NULL`` and is skipped rather than done twice.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from smsgateway.domain.reconciliation import EXPIRY_GRACE
from smsgateway.domain.retention import JSON_NUMBER_PASSES, NUMBER_PASSES
from smsgateway.domain.status import FINAL_MESSAGE_STATUSES

if TYPE_CHECKING:
    from smsgateway.store.pool import Connection

_FINAL = sorted(status.value for status in FINAL_MESSAGE_STATUSES)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def number_mask_sql(column: str) -> str:
    """SQL masking the number in ``column`` (``domain.retention``'s passes, one in another)."""
    for pattern, replacement in NUMBER_PASSES:
        column = f"regexp_replace({column}, {_literal(pattern)}, {_literal(replacement)})"
    return column


def json_mask_sql(column: str) -> str:
    """SQL masking every number-only string (values and keys) of the jsonb ``column``."""
    text = f"({column})::text"
    for pattern, replacement in JSON_NUMBER_PASSES:
        text = f"regexp_replace({text}, {_literal(pattern)}, {_literal(replacement)}, 'g')"
    return f"({text})::jsonb"


# Parameters: $1 tenant, $2 age, $3 limit, $4 final statuses, $5 grace after Sinch's expiry.
# The oldest of a tenant's messages that may be touched: unchanged for $2, nothing pending.
# created_at bounds the index range (a message changes only after it is created): only the
# rows created before the cutoff are read, and those changed since are skipped by the filter.
_SETTLED = """
    m.tenant = $1 AND m.created_at < now() - $2::interval
    AND m.updated_at < now() - $2::interval
    AND NOT EXISTS (SELECT 1 FROM outbox AS o WHERE o.message_id = m.id)
    AND NOT EXISTS (SELECT 1 FROM awaiting_report AS a
                    WHERE a.message_id = m.id
                      AND ((a.claim_token IS NOT NULL AND a.due_at > now())
                           OR (m.status <> ALL($4::text[])
                               AND a.expires_at + $5::interval > now())))
    AND NOT EXISTS (SELECT 1 FROM callback_event AS c
                    WHERE c.message_id = m.id AND c.status = 'pending')
"""

_REDACT_MESSAGES = f"""
WITH due AS (
    SELECT m.id FROM sms_log AS m
    WHERE m.redacted_at IS NULL AND {_SETTLED}
    ORDER BY m.created_at
    LIMIT $3
    FOR UPDATE SKIP LOCKED
), message AS (
    UPDATE sms_log AS m
    SET body = '', parameters = NULL, redacted_at = now(),
        content = CASE WHEN m.content IS NULL THEN NULL
                       ELSE m.content - ARRAY['url', 'subject'] END
    FROM due WHERE m.id = due.id
    RETURNING m.id
), recipient AS (
    UPDATE sms_recipient AS r SET msisdn = {number_mask_sql("r.msisdn")}
    FROM due WHERE r.message_id = due.id
), event AS (
    UPDATE sms_event AS e
    SET recipient = {number_mask_sql("e.recipient")},
        detail = {json_mask_sql("e.detail")}
    FROM due WHERE e.message_id = due.id
), callback AS (
    UPDATE callback_event AS c
    SET payload = {json_mask_sql("c.payload")}, redacted_at = now()
    FROM due WHERE c.message_id = due.id
), protection AS (
    UPDATE protection_event AS p SET recipient = {number_mask_sql("p.recipient")}
    FROM due WHERE p.message_id = due.id
)
SELECT count(*) FROM message
"""

# Deleting sms_log rows cascades (ON DELETE CASCADE) through indexed foreign keys.
_DELETE_MESSAGES = f"""
DELETE FROM sms_log
WHERE id IN (SELECT m.id FROM sms_log AS m
             WHERE {_SETTLED}
             ORDER BY m.created_at
             LIMIT $3
             FOR UPDATE SKIP LOCKED)
"""


def _inbound_of(tenant_is_null: bool) -> str:
    # Two statements rather than IS NOT DISTINCT FROM, which no index serves.
    return "i.tenant IS NULL AND $1::text IS NULL" if tenant_is_null else "i.tenant = $1"


def _redact_inbound(tenant_is_null: bool) -> str:
    return f"""
WITH due AS (
    SELECT i.id FROM inbound_message AS i
    WHERE {_inbound_of(tenant_is_null)} AND i.redacted_at IS NULL
      AND i.received_at < now() - $2::interval
    ORDER BY i.received_at
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
UPDATE inbound_message AS i
SET body = NULL, sender = {number_mask_sql("i.sender")}, redacted_at = now(),
    payload = {json_mask_sql("i.payload - 'body'")}
FROM due WHERE i.id = due.id
"""


def _delete_inbound(tenant_is_null: bool) -> str:
    return f"""
DELETE FROM inbound_message
WHERE id IN (SELECT i.id FROM inbound_message AS i
             WHERE {_inbound_of(tenant_is_null)} AND i.received_at < now() - $2::interval
             ORDER BY i.received_at
             LIMIT $3
             FOR UPDATE SKIP LOCKED)
"""


# An inbound message's body within a ``message.inbound`` event; other events have none.
_WITHOUT_INBOUND_BODY = "jsonb_set(c.payload, '{message,body}', 'null', false)"

_REDACT_TENANT_EVENTS = f"""
WITH due AS (
    SELECT c.id FROM callback_event AS c
    WHERE c.tenant = $1 AND c.redacted_at IS NULL AND c.created_at < now() - $2::interval
      AND c.status <> 'pending'
    ORDER BY c.created_at
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
UPDATE callback_event AS c
SET redacted_at = now(),
    payload = {json_mask_sql(_WITHOUT_INBOUND_BODY)}
FROM due WHERE c.id = due.id
"""

# A stream's newest event stays: the next one's sequence number follows it.
_DELETE_TENANT_EVENTS = """
DELETE FROM callback_event
WHERE id IN (SELECT c.id FROM callback_event AS c
             WHERE c.tenant = $1 AND c.created_at < now() - $2::interval
               AND c.status <> 'pending'
               AND c.sequence < (SELECT max(l.sequence) FROM callback_event AS l
                                 WHERE l.stream = c.stream)
             ORDER BY c.created_at
             LIMIT $3
             FOR UPDATE SKIP LOCKED)
"""


def _distinct_tenants(table: str, where: str = "") -> str:
    # A loose index scan: one probe of the (tenant, ...) index per tenant, not a table scan.
    extra = f"AND {where}" if where else ""
    return f"""
WITH RECURSIVE t AS (
    (SELECT tenant FROM {table} WHERE tenant IS NOT NULL {extra} ORDER BY tenant LIMIT 1)
    UNION ALL
    SELECT (SELECT x.tenant FROM {table} AS x WHERE x.tenant > t.tenant {extra}
            ORDER BY x.tenant LIMIT 1)
    FROM t WHERE t.tenant IS NOT NULL
)
SELECT tenant FROM t WHERE tenant IS NOT NULL
"""


_TENANTS = " UNION ".join(
    f"SELECT tenant FROM ({_distinct_tenants(table)}) AS {table}"
    for table in ("sms_log", "inbound_message", "callback_event")
)


async def tenants_with_data(connection: Connection) -> list[str]:
    """Every tenant that has messages, inbound messages or tenant events stored."""
    rows = await connection.fetch(_TENANTS)
    return sorted(row["tenant"] for row in rows)


async def redact_messages(
    connection: Connection, tenant: str, *, older_than: timedelta, limit: int
) -> int:
    """Redacts up to ``limit`` of ``tenant``'s settled messages unchanged for ``older_than``
    (with their recipients, events and callbacks), in one statement; returns how many."""
    count = await connection.fetchval(
        _REDACT_MESSAGES, tenant, older_than, limit, _FINAL, EXPIRY_GRACE
    )
    return int(count)


async def delete_messages(
    connection: Connection, tenant: str, *, older_than: timedelta, limit: int
) -> int:
    """Deletes up to ``limit`` of ``tenant``'s settled messages unchanged for ``older_than``."""
    status = await connection.execute(
        _DELETE_MESSAGES, tenant, older_than, limit, _FINAL, EXPIRY_GRACE
    )
    return _count(status)


async def redact_inbound(
    connection: Connection, tenant: str | None, *, older_than: timedelta, limit: int
) -> int:
    """Redacts up to ``limit`` inbound messages of ``tenant`` (None: of no tenant)."""
    status = await connection.execute(_redact_inbound(tenant is None), tenant, older_than, limit)
    return _count(status)


async def delete_inbound(
    connection: Connection, tenant: str | None, *, older_than: timedelta, limit: int
) -> int:
    """Deletes up to ``limit`` inbound messages of ``tenant`` (None: of no tenant)."""
    status = await connection.execute(_delete_inbound(tenant is None), tenant, older_than, limit)
    return _count(status)


async def redact_tenant_events(
    connection: Connection, tenant: str, *, older_than: timedelta, limit: int
) -> int:
    """Redacts up to ``limit`` of ``tenant``'s delivered or failed tenant events."""
    status = await connection.execute(_REDACT_TENANT_EVENTS, tenant, older_than, limit)
    return _count(status)


async def delete_tenant_events(
    connection: Connection, tenant: str, *, older_than: timedelta, limit: int
) -> int:
    """Deletes up to ``limit`` of ``tenant``'s delivered or failed tenant events, each
    stream's newest excepted."""
    return _count(await connection.execute(_DELETE_TENANT_EVENTS, tenant, older_than, limit))


def _count(status: str) -> int:
    # asyncpg answers an UPDATE or DELETE with its command tag, "UPDATE <rows>".
    return int(status.split()[-1])
