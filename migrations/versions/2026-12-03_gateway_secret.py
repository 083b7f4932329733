"""Secrets the gateway generates for itself, shared by every process.

- ``gateway_secret``: one row per secret, by name. Today only ``webhook_path_secret``: the
  unguessable path segment of the Sinch webhook URL when the operator set none. The first
  process to need it inserts a random value (insert-if-absent), and every process and restart
  reads that same row, so the URL given to Sinch never changes by itself.

Revision ID: 20261203_gateway_secret
Revises: 20261203_report_reconciliation
Create Date: 2026-12-03
"""

from alembic import op

revision = "20261203_gateway_secret"
down_revision = "20261203_report_reconciliation"
branch_labels = None
depends_on = None

# asyncpg prepares each statement, so a migration is a sequence of single statements.
UPGRADE = (
    """
CREATE TABLE gateway_secret (
    name        text        NOT NULL,
    value       text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT gateway_secret_pkey PRIMARY KEY (name),
    CONSTRAINT gateway_secret_value_not_empty CHECK (value <> '')
)
    """,
)

DOWNGRADE = (
    """
DROP TABLE gateway_secret
    """,
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
