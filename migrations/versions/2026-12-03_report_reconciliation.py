"""Delivery-report reconciliation: the messages still waiting for a final report.

``awaiting_report`` holds one small row per message handed to Sinch with delivery reports
asked for: when to ask Sinch next (``due_at``, also the claim's lease end), how many rounds
have asked (``attempts``) and when Sinch stops trying to deliver it (``expires_at``: the
batch's ``expire_at``, by default and at most 3 days after the send). The reconciler claims
due rows with ``FOR UPDATE SKIP LOCKED`` and deletes a row once its message is final (or given
up).

Why a table of its own rather than an index on ``sms_log``:

- An index on ``sms_log.status`` (or a partial index ``WHERE status = 'submitted'``) makes
  every status change a non-HOT update again: a column named in any index, or in a partial
  index's predicate, takes the HOT path away, and 2026-11-28_hot_status_updates dropped
  ``sms_log_status_idx`` exactly for that. A status update does not touch this table at all:
  a webhook's final report leaves the row, and the next claim deletes it (reading
  ``sms_log.status``) without asking Sinch.
- The row is written by the statement that records the batch id (one more CTE in
  ``store.dispatch``'s already batched statement: no extra round trip, no extra commit). Cost
  per message: one insert of a ~100-byte tuple with two index entries (primary key,
  ``due_at``), and later one delete (or a few HOT-less updates of ``due_at`` when a message
  needs several rounds). That update of ``sms_log`` was never HOT anyway (it sets the indexed
  ``sinch_batch_id``). The table holds only messages submitted within the last
  ``SMSGW_RECONCILE_AFTER_SECONDS`` plus those still unresolved, so it stays small.
- Messages sent with ``delivery_report = none`` get no row: nobody asked for their reports.

Revision ID: 20261203_report_reconciliation
Revises: 20261203_inbound_e164
Create Date: 2026-12-03
"""

from alembic import op

revision = "20261203_report_reconciliation"
down_revision = "20261203_inbound_e164"
branch_labels = None
depends_on = None

# asyncpg prepares each statement, so a migration is a sequence of single statements.
UPGRADE = (
    """
CREATE TABLE awaiting_report (
    message_id   uuid        NOT NULL,
    batch_id     text        NOT NULL,
    due_at       timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    attempts     integer     NOT NULL DEFAULT 0,
    claim_token  uuid,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT awaiting_report_pkey PRIMARY KEY (message_id),
    CONSTRAINT awaiting_report_message_id_fkey FOREIGN KEY (message_id)
        REFERENCES sms_log (id) ON DELETE CASCADE
)
    """,
    """
CREATE INDEX awaiting_report_due_at_idx ON awaiting_report (due_at)
    """,
)

DOWNGRADE = (
    """
DROP TABLE awaiting_report
    """,
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
