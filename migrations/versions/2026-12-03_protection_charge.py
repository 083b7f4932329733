"""Spend given back: what each message took from its tenant's spend counters.

- ``protection_charge``: one row per accepted message that took spend counters (segments or
  money), written in the statement that stores the message: the counters' keys and the
  amount taken from each. A message cancelled before sending, or ended unsent (rejected by
  Sinch at submit, expired, ...), gives exactly that back and deletes the row, so a cap is not
  eaten by messages that cost nothing. Deleted with its message (retention).

Revision ID: 20261203_protection_charge
Revises: 20261203_message_kind
Create Date: 2026-12-03
"""

from alembic import op

revision = "20261203_protection_charge"
down_revision = "20261203_message_kind"
branch_labels = None
depends_on = None

# asyncpg prepares each statement, so a migration is a sequence of single statements.
UPGRADE = (
    """
CREATE TABLE protection_charge (
    message_id  uuid      NOT NULL REFERENCES sms_log (id) ON DELETE CASCADE,
    keys        text[]    NOT NULL,
    amounts     numeric[] NOT NULL,
    CONSTRAINT protection_charge_pkey PRIMARY KEY (message_id),
    CONSTRAINT protection_charge_lengths_check
        CHECK (cardinality(keys) = cardinality(amounts))
)
    """,
)

DOWNGRADE = ("DROP TABLE protection_charge",)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
