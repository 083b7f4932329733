"""API keys: hashed, with a visible prefix, a tenant and an optional rate limit.

Messages belong to the tenant of the key that sent them.

Revision ID: 20261127_api_keys
Revises: 20261126_initial
Create Date: 2026-11-27
"""

from alembic import op

revision = "20261127_api_keys"
down_revision = "20261126_initial"
branch_labels = None
depends_on = None

# asyncpg prepares each statement, so a migration is a sequence of single statements.
UPGRADE = (
    """
CREATE TABLE api_key (
    id          uuid        NOT NULL,
    tenant      text        NOT NULL,
    name        text        NOT NULL,
    prefix      text        NOT NULL,
    key_hash    bytea       NOT NULL,
    rate_limit  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    CONSTRAINT api_key_pkey PRIMARY KEY (id),
    CONSTRAINT api_key_prefix_key UNIQUE (prefix),
    CONSTRAINT api_key_name_key UNIQUE (name),
    CONSTRAINT api_key_key_hash_check CHECK (length(key_hash) = 32)
)
    """,
    """
ALTER TABLE sms_log
    ADD COLUMN tenant text NOT NULL DEFAULT 'default',
    ADD COLUMN api_key_id uuid,
    ADD CONSTRAINT sms_log_api_key_id_fkey FOREIGN KEY (api_key_id) REFERENCES api_key (id)
    """,
    """
CREATE INDEX sms_log_tenant_created_at_idx ON sms_log (tenant, created_at DESC, id DESC)
    """,
)

DOWNGRADE = (
    """
DROP INDEX sms_log_tenant_created_at_idx
    """,
    """
ALTER TABLE sms_log DROP COLUMN api_key_id, DROP COLUMN tenant
    """,
    """
DROP TABLE api_key
    """,
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
