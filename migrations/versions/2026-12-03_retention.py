"""Personal-data retention: redact message bodies and numbers after N days, delete after M.

- ``retention_policy``: a tenant's override of the gateway's SMSGW_REDACT_AFTER_DAYS and
  SMSGW_DELETE_AFTER_DAYS; a NULL column there means "keep", a missing row "the default".
- ``redacted_at`` on ``sms_log``, ``inbound_message`` and ``callback_event``: when the sweep
  blanked the row's personal data. Each gets a partial index on (tenant, time) over the rows
  not yet redacted, so a sweep reads only what it still has to do. ``sms_log``'s status updates
  stay HOT: no index covers a column they write (``redacted_at`` is written by the sweep only).
- ``sms_recipient``: keyed by (message_id, position) instead of (message_id, msisdn), since
  masked numbers (``+46*``) of one message may coincide; a number stays unique per message
  until it is masked, and the check admits the masked form.
- Indexes on the foreign keys a delete of ``sms_log`` or ``inbound_message`` cascades through
  (``callback_event.message_id``, ``idempotency_key.message_id``, ``opt_out.inbound_id``):
  without them each deleted message would scan those tables.

The indexes are built inside the migration's transaction; on a large live database build them
first with CREATE INDEX CONCURRENTLY under the same names (IF NOT EXISTS then skips them).

Revision ID: 20261203_retention
Revises: 20261203_message_kind
Create Date: 2026-12-03
"""

from alembic import op

revision = "20261203_retention"
down_revision = "20261203_message_kind"
branch_labels = None
depends_on = None

# asyncpg prepares each statement, so a migration is a sequence of single statements.
UPGRADE = (
    """
CREATE TABLE retention_policy (
    tenant text PRIMARY KEY,
    redact_after_days integer
        CONSTRAINT retention_policy_redact_check CHECK (redact_after_days BETWEEN 1 AND 36500),
    delete_after_days integer
        CONSTRAINT retention_policy_delete_check CHECK (delete_after_days BETWEEN 1 AND 36500),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL
)
    """,
    "ALTER TABLE sms_log ADD COLUMN redacted_at timestamptz",
    "ALTER TABLE inbound_message ADD COLUMN redacted_at timestamptz",
    "ALTER TABLE callback_event ADD COLUMN redacted_at timestamptz",
    """
CREATE INDEX IF NOT EXISTS sms_log_unredacted_idx ON sms_log (tenant, created_at)
    WHERE redacted_at IS NULL
    """,
    """
CREATE INDEX IF NOT EXISTS inbound_message_unredacted_idx
    ON inbound_message (tenant, received_at) WHERE redacted_at IS NULL
    """,
    """
CREATE INDEX IF NOT EXISTS callback_event_tenant_unredacted_idx
    ON callback_event (tenant, created_at) WHERE redacted_at IS NULL AND tenant IS NOT NULL
    """,
    "CREATE INDEX IF NOT EXISTS callback_event_message_id_idx ON callback_event (message_id)",
    "CREATE INDEX IF NOT EXISTS idempotency_key_message_id_idx ON idempotency_key (message_id)",
    "CREATE INDEX IF NOT EXISTS opt_out_inbound_id_idx ON opt_out (inbound_id)",
    """
CREATE UNIQUE INDEX IF NOT EXISTS sms_recipient_position_key
    ON sms_recipient (message_id, position)
    """,
    """
ALTER TABLE sms_recipient
    DROP CONSTRAINT sms_recipient_pkey,
    ADD CONSTRAINT sms_recipient_pkey PRIMARY KEY USING INDEX sms_recipient_position_key
    """,
    """
CREATE UNIQUE INDEX sms_recipient_msisdn_key ON sms_recipient (message_id, msisdn)
    WHERE msisdn NOT LIKE '%*'
    """,
    """
ALTER TABLE sms_recipient
    DROP CONSTRAINT sms_recipient_msisdn_check,
    ADD CONSTRAINT sms_recipient_msisdn_check
        CHECK (msisdn ~ '^\\+[1-9][0-9]{1,14}$' OR msisdn ~ '^\\+[0-9]{0,3}\\*$') NOT VALID
    """,
    "ALTER TABLE sms_recipient VALIDATE CONSTRAINT sms_recipient_msisdn_check",
)

# Refuses (the key or the check fails) once numbers have been masked: delete those messages.
DOWNGRADE = (
    """
ALTER TABLE sms_recipient
    DROP CONSTRAINT sms_recipient_msisdn_check,
    ADD CONSTRAINT sms_recipient_msisdn_check CHECK (msisdn ~ '^\\+[1-9][0-9]{1,14}$')
    """,
    "DROP INDEX sms_recipient_msisdn_key",
    """
ALTER TABLE sms_recipient
    DROP CONSTRAINT sms_recipient_pkey,
    ADD CONSTRAINT sms_recipient_pkey PRIMARY KEY (message_id, msisdn)
    """,
    "DROP INDEX opt_out_inbound_id_idx",
    "DROP INDEX idempotency_key_message_id_idx",
    "DROP INDEX callback_event_message_id_idx",
    "DROP INDEX callback_event_tenant_unredacted_idx",
    "DROP INDEX inbound_message_unredacted_idx",
    "DROP INDEX sms_log_unredacted_idx",
    "ALTER TABLE callback_event DROP COLUMN redacted_at",
    "ALTER TABLE inbound_message DROP COLUMN redacted_at",
    "ALTER TABLE sms_log DROP COLUMN redacted_at",
    "DROP TABLE retention_policy",
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
