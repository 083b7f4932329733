"""Tenancy: scoped API keys, senders owned by tenants, inbound and opt-outs per tenant, and
callback events that belong to a tenant rather than to a message.

- ``api_key.scopes``: what a key may do (``send``, ``read``, ``admin``). Keys that exist when
  this runs get all three: until now every key could do all of it, and taking a power away
  from a running caller on upgrade would break it without warning. Operators narrow keys by
  issuing new ones (``smsgateway apikey create --scope ...``) and revoking the old.
- ``sender_assignment``: which tenant owns each of the gateway's numbers (one owner at most).
- ``tenant_setting``: per-tenant settings; today the URL a tenant's own events go to
  (``message.inbound``, ``opt_out.changed``).
- ``inbound_message.tenant``: the owner of the receiving number when the message arrived;
  NULL (admin keys only) when the number had none. Rows stored before this revision have none.
- ``opt_out`` gains a scope: ``tenant`` and ``sender`` both NULL is a global opt-out (every
  tenant, every sender; what every row was until now, so existing rows keep their effect);
  ``sender`` set blocks that sender, whoever sends from it; ``tenant`` set and ``sender`` NULL
  blocks every message of that tenant. One row per (msisdn, tenant, sender), NULLs equal.
- ``callback_event.stream``: events are ordered per stream (a message's id for status events,
  ``tenant:<name>`` for a tenant's own events); ``message_id`` is NULL for the latter.

Revision ID: 20261203_tenancy
Revises: 20261203_gateway_secret
Create Date: 2026-12-03
"""

from alembic import op

revision = "20261203_tenancy"
down_revision = "20261203_protect"
branch_labels = None
depends_on = None

# asyncpg prepares each statement, so a migration is a sequence of single statements.
UPGRADE = (
    """
ALTER TABLE api_key ADD COLUMN scopes text[] NOT NULL DEFAULT '{send,read,admin}'
    """,
    """
-- New keys always name their scopes (the application decides the default, not the table).
ALTER TABLE api_key ALTER COLUMN scopes DROP DEFAULT
    """,
    """
ALTER TABLE api_key ADD CONSTRAINT api_key_scopes_check
    CHECK (cardinality(scopes) > 0 AND scopes <@ '{send,read,admin}'::text[])
    """,
    """
CREATE TABLE sender_assignment (
    sender       text        NOT NULL,
    tenant       text        NOT NULL,
    assigned_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sender_assignment_pkey PRIMARY KEY (sender)
)
    """,
    """
CREATE INDEX sender_assignment_tenant_idx ON sender_assignment (tenant)
    """,
    """
CREATE TABLE tenant_setting (
    tenant        text        NOT NULL,
    callback_url  text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenant_setting_pkey PRIMARY KEY (tenant)
)
    """,
    """
ALTER TABLE inbound_message ADD COLUMN tenant text
    """,
    """
CREATE INDEX inbound_message_tenant_received_at_idx
    ON inbound_message (tenant, received_at DESC, id DESC)
    """,
    """
ALTER TABLE opt_out DROP CONSTRAINT opt_out_pkey
    """,
    """
ALTER TABLE opt_out
    ADD COLUMN id uuid NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN tenant text,
    ADD COLUMN sender text
    """,
    """
ALTER TABLE opt_out ADD CONSTRAINT opt_out_pkey PRIMARY KEY (id)
    """,
    """
ALTER TABLE opt_out
    ADD CONSTRAINT opt_out_scope_key UNIQUE NULLS NOT DISTINCT (msisdn, tenant, sender)
    """,
    """
DROP INDEX opt_out_active_idx
    """,
    """
CREATE INDEX opt_out_active_idx ON opt_out (changed_at DESC, id DESC) WHERE opted_out
    """,
    """
CREATE INDEX opt_out_tenant_active_idx
    ON opt_out (tenant, changed_at DESC, id DESC) WHERE opted_out
    """,
    """
ALTER TABLE callback_event ADD COLUMN stream text, ADD COLUMN tenant text
    """,
    """
UPDATE callback_event SET stream = message_id::text
    """,
    """
ALTER TABLE callback_event
    ALTER COLUMN stream SET NOT NULL,
    ALTER COLUMN message_id DROP NOT NULL,
    DROP CONSTRAINT callback_event_sequence_key,
    ADD CONSTRAINT callback_event_sequence_key UNIQUE (stream, sequence),
    ADD CONSTRAINT callback_event_owner_check CHECK ((message_id IS NULL) <> (tenant IS NULL))
    """,
    """
DROP INDEX callback_event_pending_idx
    """,
    """
-- The claim's "no earlier pending event of this stream" probe.
CREATE INDEX callback_event_pending_idx
    ON callback_event (stream, sequence) WHERE status = 'pending'
    """,
    """
CREATE INDEX callback_event_tenant_idx
    ON callback_event (tenant, created_at DESC, id DESC) WHERE tenant IS NOT NULL
    """,
)

DOWNGRADE = (
    """
DELETE FROM callback_event WHERE message_id IS NULL
    """,
    """
DROP INDEX callback_event_tenant_idx
    """,
    """
DROP INDEX callback_event_pending_idx
    """,
    """
ALTER TABLE callback_event
    DROP CONSTRAINT callback_event_owner_check,
    DROP CONSTRAINT callback_event_sequence_key,
    ALTER COLUMN message_id SET NOT NULL,
    DROP COLUMN stream,
    DROP COLUMN tenant,
    ADD CONSTRAINT callback_event_sequence_key UNIQUE (message_id, sequence)
    """,
    """
CREATE INDEX callback_event_pending_idx
    ON callback_event (message_id, sequence) WHERE status = 'pending'
    """,
    """
-- One row per number is all the old schema holds: keep the one that blocks (an opt-out in
-- force anywhere becomes global, never silently lifted), else the newest.
DELETE FROM opt_out AS o USING opt_out AS n
WHERE o.msisdn = n.msisdn AND o.id <> n.id
  AND (o.opted_out, o.changed_at, o.id) < (n.opted_out, n.changed_at, n.id)
    """,
    """
DROP INDEX opt_out_tenant_active_idx
    """,
    """
DROP INDEX opt_out_active_idx
    """,
    """
ALTER TABLE opt_out DROP CONSTRAINT opt_out_scope_key, DROP CONSTRAINT opt_out_pkey
    """,
    """
ALTER TABLE opt_out DROP COLUMN id, DROP COLUMN tenant, DROP COLUMN sender
    """,
    """
ALTER TABLE opt_out ADD CONSTRAINT opt_out_pkey PRIMARY KEY (msisdn)
    """,
    """
CREATE INDEX opt_out_active_idx ON opt_out (changed_at DESC, msisdn DESC) WHERE opted_out
    """,
    """
DROP INDEX inbound_message_tenant_received_at_idx
    """,
    """
ALTER TABLE inbound_message DROP COLUMN tenant
    """,
    """
DROP TABLE tenant_setting
    """,
    """
DROP TABLE sender_assignment
    """,
    """
ALTER TABLE api_key DROP CONSTRAINT api_key_scopes_check, DROP COLUMN scopes
    """,
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
