"""Spend given back: what each message took from its tenant's spend counters.

- ``sms_log.spend_charge``: what an accepted message took from its tenant's spend counters
  (segments or money), as ``{counter key: amount}``; NULL when it took none. A message
  cancelled before sending, or ended unsent (rejected by Sinch at submit, expired, ...), gives
  exactly that back and clears it, so a cap is not eaten by messages that cost nothing. A
  column rather than a table of its own: the accept path writes the message row anyway, and a
  row per message would add a tuple, an index entry and a foreign-key check to every accept.

A nullable column without a default is added without rewriting the table.

Revision ID: 20261203_protection_charge
Revises: 20261203_retention
Create Date: 2026-12-03
"""

from alembic import op

revision = "20261203_protection_charge"
down_revision = "20261203_retention"
branch_labels = None
depends_on = None

# asyncpg prepares each statement, so a migration is a sequence of single statements.
UPGRADE = ("ALTER TABLE sms_log ADD COLUMN spend_charge jsonb",)

DOWNGRADE = ("ALTER TABLE sms_log DROP COLUMN spend_charge",)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
