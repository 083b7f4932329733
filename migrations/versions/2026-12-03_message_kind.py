"""Message kinds: text, MMS (``media``) and binary SMS, on the one durable path.

- ``sms_log.kind``: ``text`` (every existing row), ``media`` or ``binary``; metrics and the API
  say it, dispatch picks the Sinch batch ``type`` by it.
- ``sms_log.content``: what a non-text message carries besides ``body``: for ``media`` the
  ``url``, ``subject`` and ``strict_validation``; for ``binary`` the ``udh`` (hex). NULL for
  text. ``body`` holds the MMS text (possibly empty) or the binary payload in base64.
- ``encoding`` may also be ``MMS`` or ``binary``; an MMS may carry no text, so only a text
  message must have at least one character.

Adding a column with a constant default rewrites nothing (PostgreSQL 11+); the checks are
added ``NOT VALID`` and validated separately, so no long lock is held over a large table.

Revision ID: 20261203_message_kind
Revises: 20261203_gateway_secret
Create Date: 2026-12-03
"""

from alembic import op

revision = "20261203_message_kind"
down_revision = "20261203_dispatch_wakeup"
branch_labels = None
depends_on = None

# asyncpg prepares each statement, so a migration is a sequence of single statements.
UPGRADE = (
    """
ALTER TABLE sms_log
    ADD COLUMN kind text NOT NULL DEFAULT 'text',
    ADD COLUMN content jsonb
    """,
    """
ALTER TABLE sms_log
    ADD CONSTRAINT sms_log_kind_check CHECK (kind IN ('text', 'media', 'binary')) NOT VALID
    """,
    "ALTER TABLE sms_log VALIDATE CONSTRAINT sms_log_kind_check",
    """
ALTER TABLE sms_log
    DROP CONSTRAINT sms_log_encoding_check,
    ADD CONSTRAINT sms_log_encoding_check
        CHECK (encoding IN ('GSM-7', 'UCS-2', 'MMS', 'binary')) NOT VALID,
    DROP CONSTRAINT sms_log_character_count_check,
    ADD CONSTRAINT sms_log_character_count_check
        CHECK (character_count >= 1 OR (kind = 'media' AND character_count = 0)) NOT VALID
    """,
    "ALTER TABLE sms_log VALIDATE CONSTRAINT sms_log_encoding_check",
    "ALTER TABLE sms_log VALIDATE CONSTRAINT sms_log_character_count_check",
)

# Refuses (a check fails) while MMS or binary messages are stored: delete them first.
DOWNGRADE = (
    """
ALTER TABLE sms_log
    DROP CONSTRAINT sms_log_encoding_check,
    ADD CONSTRAINT sms_log_encoding_check CHECK (encoding IN ('GSM-7', 'UCS-2')),
    DROP CONSTRAINT sms_log_character_count_check,
    ADD CONSTRAINT sms_log_character_count_check CHECK (character_count >= 1)
    """,
    """
ALTER TABLE sms_log DROP CONSTRAINT sms_log_kind_check, DROP COLUMN content, DROP COLUMN kind
    """,
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
