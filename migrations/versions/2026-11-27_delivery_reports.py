"""Delivery reports and inbound messages: report dedupe, unmatched reports, MOs and opt-outs.

- ``sms_event.dedupe_key``: a digest of a report's payload, unique per message, so a report
  Sinch delivers twice is stored once and changes nothing the second time.
- ``unmatched_report``: reports that matched no message (yet). ``unknown_batch`` rows are
  applied, in arrival order, in the transaction that records their batch id; ``unprocessable``
  rows (an unknown ``type``, missing fields) are kept for operators and never applied.
- ``inbound_message``: every MO callback, unique on Sinch's ``id``.
- ``opt_out``: one row per number that ever opted out or in; ``opted_out`` says which is in
  force, ``changed_at`` is when the deciding event happened (a late, older event never wins).

Revision ID: 20261127_delivery_reports
Revises: 20261127_sending
Create Date: 2026-11-27
"""

from alembic import op

revision = "20261127_delivery_reports"
down_revision = "20261127_sending"
branch_labels = None
depends_on = None

# asyncpg prepares each statement, so a migration is a sequence of single statements.
UPGRADE = (
    """
ALTER TABLE sms_event ADD COLUMN dedupe_key text
    """,
    """
CREATE UNIQUE INDEX sms_event_dedupe_key_key
    ON sms_event (message_id, dedupe_key) WHERE dedupe_key IS NOT NULL
    """,
    """
CREATE TABLE unmatched_report (
    id               bigint      GENERATED ALWAYS AS IDENTITY,
    kind             text        NOT NULL,
    batch_id         text,
    client_reference text,
    report_type      text,
    dedupe_key       text        NOT NULL,
    payload          jsonb       NOT NULL,
    report           jsonb,
    received_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT unmatched_report_pkey PRIMARY KEY (id),
    CONSTRAINT unmatched_report_dedupe_key_key UNIQUE (dedupe_key),
    CONSTRAINT unmatched_report_kind_check CHECK (kind IN ('unknown_batch', 'unprocessable')),
    CONSTRAINT unmatched_report_batch_check CHECK (kind <> 'unknown_batch' OR batch_id IS NOT NULL)
)
    """,
    """
CREATE INDEX unmatched_report_batch_id_idx
    ON unmatched_report (batch_id, id) WHERE kind = 'unknown_batch'
    """,
    """
CREATE TABLE inbound_message (
    id                uuid        NOT NULL DEFAULT gen_random_uuid(),
    sinch_id          text        NOT NULL,
    type              text        NOT NULL,
    sender            text,
    recipient         text,
    body              text,
    keyword           text,
    client_reference  text,
    operator_id       text,
    received_at       timestamptz NOT NULL,
    sent_at           timestamptz,
    payload           jsonb       NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT inbound_message_pkey PRIMARY KEY (id),
    CONSTRAINT inbound_message_sinch_id_key UNIQUE (sinch_id),
    CONSTRAINT inbound_message_keyword_check CHECK (keyword IN ('opt_out', 'opt_in', 'help'))
)
    """,
    """
-- Newest-first keyset pagination walks (received_at, id) backwards.
CREATE INDEX inbound_message_received_at_idx ON inbound_message (received_at DESC, id DESC)
    """,
    """
CREATE INDEX inbound_message_sender_idx ON inbound_message (sender, received_at DESC)
    """,
    """
CREATE TABLE opt_out (
    msisdn       text        NOT NULL,
    opted_out    boolean     NOT NULL,
    changed_at   timestamptz NOT NULL,
    source       text        NOT NULL,
    keyword      text,
    inbound_id   uuid,
    note         text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT opt_out_pkey PRIMARY KEY (msisdn),
    CONSTRAINT opt_out_msisdn_check CHECK (msisdn ~ '^\\+[1-9][0-9]{1,14}$'),
    CONSTRAINT opt_out_source_check CHECK (source IN ('inbound', 'api')),
    CONSTRAINT opt_out_inbound_id_fkey FOREIGN KEY (inbound_id)
        REFERENCES inbound_message (id) ON DELETE SET NULL
)
    """,
    """
CREATE INDEX opt_out_active_idx ON opt_out (changed_at DESC, msisdn DESC) WHERE opted_out
    """,
)

DOWNGRADE = (
    """
DROP TABLE opt_out
    """,
    """
DROP TABLE inbound_message
    """,
    """
DROP TABLE unmatched_report
    """,
    """
DROP INDEX sms_event_dedupe_key_key
    """,
    """
ALTER TABLE sms_event DROP COLUMN dedupe_key
    """,
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
