"""Initial schema: accepted messages (sms_log), their recipients and their event history.

Revision ID: 20261126_initial
Revises:
Create Date: 2026-11-26
"""

from alembic import op

revision = "20261126_initial"
down_revision = None
branch_labels = None
depends_on = None

# asyncpg prepares each statement, so a migration is a sequence of single statements.
UPGRADE = (
    """
CREATE TABLE sms_log (
    id                uuid        NOT NULL,
    sender            text,
    body              text        NOT NULL,
    encoding          text        NOT NULL,
    segment_count     integer     NOT NULL,
    character_count   integer     NOT NULL,
    recipient_count   integer     NOT NULL,
    client_reference  text,
    sinch_batch_id    text,
    status            text        NOT NULL DEFAULT 'queued',
    status_code       text,
    status_detail     text,
    delivery_report   text        NOT NULL DEFAULT 'per_recipient',
    send_at           timestamptz,
    expire_at         timestamptz,
    callback_url      text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    submitted_at      timestamptz,
    CONSTRAINT sms_log_pkey PRIMARY KEY (id),
    CONSTRAINT sms_log_encoding_check CHECK (encoding IN ('GSM-7', 'UCS-2')),
    CONSTRAINT sms_log_segment_count_check CHECK (segment_count >= 1),
    CONSTRAINT sms_log_character_count_check CHECK (character_count >= 1),
    CONSTRAINT sms_log_recipient_count_check CHECK (recipient_count BETWEEN 1 AND 1000),
    CONSTRAINT sms_log_status_check CHECK (status IN (
        'queued', 'scheduled', 'submitted', 'delivered', 'partially_delivered',
        'failed', 'rejected', 'expired', 'cancelled')),
    CONSTRAINT sms_log_delivery_report_check CHECK (delivery_report IN (
        'none', 'summary', 'full', 'per_recipient', 'per_recipient_final')),
    CONSTRAINT sms_log_expire_after_send_check CHECK (
        expire_at IS NULL OR send_at IS NULL OR expire_at > send_at)
)
    """,
    """
-- Delivery reports arrive by batch id: one message per Sinch batch.
CREATE UNIQUE INDEX sms_log_sinch_batch_id_key
    ON sms_log (sinch_batch_id) WHERE sinch_batch_id IS NOT NULL
    """,
    """
CREATE INDEX sms_log_status_idx ON sms_log (status)
    """,
    """
-- Newest-first keyset pagination walks (created_at, id) backwards.
CREATE INDEX sms_log_created_at_idx ON sms_log (created_at DESC, id DESC)
    """,
    """
CREATE INDEX sms_log_client_reference_idx
    ON sms_log (client_reference) WHERE client_reference IS NOT NULL
    """,
    """
CREATE TABLE sms_recipient (
    message_id          uuid        NOT NULL,
    position            integer     NOT NULL,
    msisdn              text        NOT NULL,
    status              text        NOT NULL DEFAULT 'queued',
    sinch_code          integer,
    status_at           timestamptz,
    operator_status_at  timestamptz,
    operator            text,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sms_recipient_pkey PRIMARY KEY (message_id, msisdn),
    CONSTRAINT sms_recipient_message_id_fkey FOREIGN KEY (message_id)
        REFERENCES sms_log (id) ON DELETE CASCADE,
    CONSTRAINT sms_recipient_msisdn_check CHECK (msisdn ~ '^\\+[1-9][0-9]{1,14}$'),
    CONSTRAINT sms_recipient_status_check CHECK (status IN (
        'queued', 'scheduled', 'submitted', 'dispatched', 'delivered', 'failed',
        'rejected', 'aborted', 'expired', 'cancelled', 'deleted', 'unknown', 'opted_out'))
)
    """,
    """
CREATE INDEX sms_recipient_msisdn_idx ON sms_recipient (msisdn)
    """,
    """
CREATE TABLE sms_event (
    id           bigint      GENERATED ALWAYS AS IDENTITY,
    message_id   uuid        NOT NULL,
    recipient    text,
    kind         text        NOT NULL,
    status       text,
    sinch_code   integer,
    detail       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sms_event_pkey PRIMARY KEY (id),
    CONSTRAINT sms_event_message_id_fkey FOREIGN KEY (message_id)
        REFERENCES sms_log (id) ON DELETE CASCADE
)
    """,
    """
CREATE INDEX sms_event_message_id_idx ON sms_event (message_id, id)
    """,
)

DOWNGRADE = (
    """
DROP TABLE sms_event
    """,
    """
DROP TABLE sms_recipient
    """,
    """
DROP TABLE sms_log
    """,
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
