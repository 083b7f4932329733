"""Drop sms_log_created_at_idx: no query reads messages by age across tenants.

Listing, retention and deletion all go by tenant (``sms_log_tenant_created_at_idx``,
``sms_log_unredacted_idx``). The global index cost every accept an index entry, and every
submit another (setting ``sinch_batch_id`` is not a HOT update), for nothing.

Revision ID: 20261203_unused_index
Revises: 20261203_protection_charge
Create Date: 2026-12-03
"""

from alembic import op

revision = "20261203_unused_index"
down_revision = "20261203_protection_charge"
branch_labels = None
depends_on = None

UPGRADE = ("DROP INDEX IF EXISTS sms_log_created_at_idx",)

DOWNGRADE = ("CREATE INDEX sms_log_created_at_idx ON sms_log (created_at DESC, id DESC)",)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
