"""Sending: the outbox the dispatcher works from, idempotency keys, and the shared send cap.

An outbox row exists while a message still has to be handed to Sinch. Claiming it moves its
``due_at`` to the end of the lease, so a crashed worker's claim simply becomes due again;
``claim_token`` makes sure that only the current claimant can complete or reschedule it.

Revision ID: 20261127_sending
Revises: 20261127_api_keys
Create Date: 2026-11-27
"""

from alembic import op

revision = "20261127_sending"
down_revision = "20261127_api_keys"
branch_labels = None
depends_on = None

# asyncpg prepares each statement, so a migration is a sequence of single statements.
UPGRADE = (
    """
ALTER TABLE sms_log
    ADD COLUMN parameters jsonb,
    ADD COLUMN max_segments integer
    """,
    """
CREATE TABLE outbox (
    message_id   uuid        NOT NULL,
    due_at       timestamptz NOT NULL DEFAULT now(),
    attempts     integer     NOT NULL DEFAULT 0,
    claim_token  uuid,
    claimed_by   text,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT outbox_pkey PRIMARY KEY (message_id),
    CONSTRAINT outbox_message_id_fkey FOREIGN KEY (message_id)
        REFERENCES sms_log (id) ON DELETE CASCADE
)
    """,
    """
CREATE INDEX outbox_due_at_idx ON outbox (due_at)
    """,
    """
CREATE TABLE idempotency_key (
    api_key_id       uuid        NOT NULL,
    idempotency_key  text        NOT NULL,
    request_hash     bytea       NOT NULL,
    message_id       uuid        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_key_pkey PRIMARY KEY (api_key_id, idempotency_key),
    CONSTRAINT idempotency_key_api_key_id_fkey FOREIGN KEY (api_key_id)
        REFERENCES api_key (id) ON DELETE CASCADE,
    CONSTRAINT idempotency_key_message_id_fkey FOREIGN KEY (message_id)
        REFERENCES sms_log (id) ON DELETE CASCADE
)
    """,
    """
CREATE INDEX idempotency_key_created_at_idx ON idempotency_key (created_at)
    """,
    """
CREATE TABLE send_throttle (
    name        text             NOT NULL,
    tokens      double precision NOT NULL,
    updated_at  timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT send_throttle_pkey PRIMARY KEY (name)
)
    """,
)

DOWNGRADE = (
    """
DROP TABLE send_throttle
    """,
    """
DROP TABLE idempotency_key
    """,
    """
DROP TABLE outbox
    """,
    """
ALTER TABLE sms_log DROP COLUMN max_segments, DROP COLUMN parameters
    """,
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
