"""Signed-webhook nonces shared by every gateway process, and what the retention job scans.

- ``webhook_nonce``: each nonce of a signed Sinch callback whose signature verified, kept
  until it can no longer be replayed (twice the accepted timestamp window after ``seen_at``;
  the retention job deletes older rows). A nonce seen by any process is refused by all.
- ``unmatched_report_received_at_idx``: the retention job deletes unmatched reports by age.

Revision ID: 20261128_webhook_nonces
Revises: 20261128_hot_status_updates
Create Date: 2026-11-28
"""

from alembic import op

revision = "20261128_webhook_nonces"
down_revision = "20261128_hot_status_updates"
branch_labels = None
depends_on = None

# asyncpg prepares each statement, so a migration is a sequence of single statements.
UPGRADE = (
    """
CREATE TABLE webhook_nonce (
    nonce    text        NOT NULL,
    seen_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_nonce_pkey PRIMARY KEY (nonce)
)
    """,
    """
CREATE INDEX webhook_nonce_seen_at_idx ON webhook_nonce (seen_at)
    """,
    """
CREATE INDEX unmatched_report_received_at_idx ON unmatched_report (received_at)
    """,
)

DOWNGRADE = (
    """
DROP INDEX unmatched_report_received_at_idx
    """,
    """
DROP TABLE webhook_nonce
    """,
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
