"""Protection against SMS pumping and runaway spend (issue #14).

- ``protection_policy``: a tenant's policy (``api_key_id`` null) or an API key's, which can only
  narrow its tenant's. ``policy`` is the JSON document ``smsgateway policy show`` prints.
- ``protection_policy_change``: every change, with who made it and when (append-only).
- ``protection_counter``: velocity buckets and spend totals, one row per key (``velocity:...``
  or ``spend:<tenant>:<period>:<unit>``), locked and updated in the accept transaction so that
  every gateway process shares them. A spend period is in the key, so a new day or month
  starts a new row: the calendar reset needs no job.
- ``protection_event``: recipients let through by a monitoring policy, with what it would have
  said, so an operator can see what locking it would refuse.

Revision ID: 20261203_protect
Revises: 20261203_gateway_secret
Create Date: 2026-12-03
"""

from alembic import op

revision = "20261203_protect"
down_revision = "20261203_gateway_secret"
branch_labels = None
depends_on = None

# asyncpg prepares each statement, so a migration is a sequence of single statements.
UPGRADE = (
    """
CREATE TABLE protection_policy (
    tenant      text        NOT NULL,
    api_key_id  uuid        REFERENCES api_key (id) ON DELETE CASCADE,
    policy      jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text        NOT NULL,
    CONSTRAINT protection_policy_is_object CHECK (jsonb_typeof(policy) = 'object')
)
    """,
    """
CREATE UNIQUE INDEX protection_policy_tenant_key
    ON protection_policy (tenant) WHERE api_key_id IS NULL
    """,
    """
CREATE UNIQUE INDEX protection_policy_api_key
    ON protection_policy (api_key_id) WHERE api_key_id IS NOT NULL
    """,
    """
CREATE TABLE protection_policy_change (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant      text        NOT NULL,
    api_key_id  uuid,
    policy      jsonb,
    changed_by  text        NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
)
    """,
    """
CREATE INDEX protection_policy_change_tenant ON protection_policy_change (tenant, changed_at)
    """,
    """
CREATE TABLE protection_counter (
    key         text        NOT NULL,
    amount      numeric     NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT protection_counter_pkey PRIMARY KEY (key)
)
    """,
    """
CREATE TABLE protection_event (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id  uuid        NOT NULL REFERENCES sms_log (id) ON DELETE CASCADE,
    tenant      text        NOT NULL,
    recipient   text        NOT NULL,
    region      text        NOT NULL,
    number_type text        NOT NULL,
    code        text        NOT NULL,
    occurred_at timestamptz NOT NULL
)
    """,
    """
CREATE INDEX protection_event_tenant ON protection_event (tenant, occurred_at)
    """,
    """
CREATE INDEX protection_event_message ON protection_event (message_id)
    """,
)

DOWNGRADE = (
    "DROP TABLE protection_event",
    "DROP TABLE protection_counter",
    "DROP TABLE protection_policy_change",
    "DROP TABLE protection_policy",
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
