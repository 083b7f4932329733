"""Status callbacks to callers: a durable queue of signed events, and every attempt made.

- ``callback_event``: one row per recipient status change to tell a caller about. ``id`` is the
  event's stable id (sent as ``Smsgateway-Event-Id`` and in the body) so receivers can drop
  duplicates. ``sequence`` numbers a message's events from 1: only the lowest pending one of a
  message is ever claimed, so a message's callbacks arrive in order. ``host`` (lower-cased
  ``host[:port]`` of ``url``) lets a worker cap its concurrent calls per host. A claim moves
  ``due_at`` to the end of its lease and sets ``claim_token``, as the outbox does.
  ``queued_at`` is when the retry horizon started (creation, or the last replay).
- ``callback_attempt``: every POST made for an event, with its outcome.
- ``api_key.default_callback_url``: where a key's messages' events go when a message names no
  ``callback_url`` of its own.

Revision ID: 20261127_status_callbacks
Revises: 20261127_delivery_reports
Create Date: 2026-11-27
"""

from alembic import op

revision = "20261127_status_callbacks"
down_revision = "20261127_delivery_reports"
branch_labels = None
depends_on = None

# asyncpg prepares each statement, so a migration is a sequence of single statements.
UPGRADE = (
    """
ALTER TABLE api_key ADD COLUMN default_callback_url text
    """,
    """
CREATE TABLE callback_event (
    id                uuid        NOT NULL,
    message_id        uuid        NOT NULL,
    sequence          integer     NOT NULL,
    url               text        NOT NULL,
    host              text        NOT NULL,
    payload           jsonb       NOT NULL,
    status            text        NOT NULL DEFAULT 'pending',
    attempts          integer     NOT NULL DEFAULT 0,
    replays           integer     NOT NULL DEFAULT 0,
    due_at            timestamptz NOT NULL DEFAULT now(),
    claim_token       uuid,
    claimed_by        text,
    last_status_code  integer,
    last_error        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    queued_at         timestamptz NOT NULL DEFAULT now(),
    delivered_at      timestamptz,
    failed_at         timestamptz,
    CONSTRAINT callback_event_pkey PRIMARY KEY (id),
    CONSTRAINT callback_event_message_id_fkey FOREIGN KEY (message_id)
        REFERENCES sms_log (id) ON DELETE CASCADE,
    CONSTRAINT callback_event_sequence_key UNIQUE (message_id, sequence),
    CONSTRAINT callback_event_status_check CHECK (status IN ('pending', 'delivered', 'failed')),
    CONSTRAINT callback_event_sequence_check CHECK (sequence >= 1)
)
    """,
    """
-- The claim's scan: pending events by due time.
CREATE INDEX callback_event_due_idx ON callback_event (due_at) WHERE status = 'pending'
    """,
    """
-- The claim's "no earlier pending event of this message" probe.
CREATE INDEX callback_event_pending_idx
    ON callback_event (message_id, sequence) WHERE status = 'pending'
    """,
    """
CREATE TABLE callback_attempt (
    id           bigint      GENERATED ALWAYS AS IDENTITY,
    event_id     uuid        NOT NULL,
    attempt      integer     NOT NULL,
    outcome      text        NOT NULL,
    status_code  integer,
    error        text,
    duration_ms  double precision NOT NULL,
    worker       text        NOT NULL,
    attempted_at timestamptz NOT NULL,
    CONSTRAINT callback_attempt_pkey PRIMARY KEY (id),
    CONSTRAINT callback_attempt_event_id_fkey FOREIGN KEY (event_id)
        REFERENCES callback_event (id) ON DELETE CASCADE,
    CONSTRAINT callback_attempt_outcome_check CHECK (outcome IN ('delivered', 'retry', 'failed'))
)
    """,
    """
CREATE INDEX callback_attempt_event_id_idx ON callback_attempt (event_id, id)
    """,
)

DOWNGRADE = (
    """
DROP TABLE callback_attempt
    """,
    """
DROP TABLE callback_event
    """,
    """
ALTER TABLE api_key DROP COLUMN default_callback_url
    """,
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
