"""Status changes as heap-only (HOT) updates: no index entries written for them.

A message's status changes at least twice (submitted, then its final status) and each of its
recipients' as often. Postgres can update a row in place, without a new entry in every index
of the table, when no indexed column changes and the row's page has room:

- ``sms_log_status_idx`` goes: it made every status change write a new entry into all six
  indexes of ``sms_log``, and no query needs it (lists filter by status within a tenant's
  ``(tenant, created_at, id)`` range).
- ``sms_log`` and ``sms_recipient`` keep 10 % of each page free (``fillfactor = 90``), so
  that the updated row fits on its page. Existing pages keep their layout until rewritten.

Revision ID: 20261128_hot_status_updates
Revises: 20261127_status_callbacks
Create Date: 2026-11-28
"""

from alembic import op

revision = "20261128_hot_status_updates"
down_revision = "20261127_status_callbacks"
branch_labels = None
depends_on = None

# asyncpg prepares each statement, so a migration is a sequence of single statements.
UPGRADE = (
    """
DROP INDEX sms_log_status_idx
    """,
    """
ALTER TABLE sms_log SET (fillfactor = 90)
    """,
    """
ALTER TABLE sms_recipient SET (fillfactor = 90)
    """,
)

DOWNGRADE = (
    """
ALTER TABLE sms_recipient RESET (fillfactor)
    """,
    """
ALTER TABLE sms_log RESET (fillfactor)
    """,
    """
CREATE INDEX sms_log_status_idx ON sms_log (status)
    """,
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
