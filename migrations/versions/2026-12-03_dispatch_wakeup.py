"""Wake the dispatcher and the callback worker the moment work commits (LISTEN/NOTIFY).

- ``smsgw_notify_outbox_due()``: a statement-level trigger on ``outbox`` INSERT that sends
  one ``NOTIFY smsgw_outbox_due`` when the statement added a row due now. Statement-level, so
  a group commit of hundreds of accepts sends one notification, not one per message; and
  Postgres delivers it only when the transaction commits, so a worker never wakes for a row it
  cannot see yet. Rows scheduled for later are left to the poll.
- ``smsgw_notify_callback_due()``: the same on ``callback_event`` INSERT, channel
  ``smsgw_callback_due``.

The channel names are ``smsgateway.store.notifications.OUTBOX_CHANNEL`` and
``CALLBACK_CHANNEL``. Polling stays as the safety net: a notification lost with a dropped
listener connection costs at most one poll interval.

Revision ID: 20261203_dispatch_wakeup
Revises: 20261203_gateway_secret
Create Date: 2026-12-03
"""

from alembic import op

revision = "20261203_dispatch_wakeup"
down_revision = "20261203_tenancy"
branch_labels = None
depends_on = None

# asyncpg prepares each statement, so a migration is a sequence of single statements.
UPGRADE = (
    """
CREATE FUNCTION smsgw_notify_outbox_due() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM added WHERE due_at <= now()) THEN
        PERFORM pg_notify('smsgw_outbox_due', '');
    END IF;
    RETURN NULL;
END
$$
    """,
    """
CREATE TRIGGER outbox_notify_due
AFTER INSERT ON outbox
REFERENCING NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION smsgw_notify_outbox_due()
    """,
    """
CREATE FUNCTION smsgw_notify_callback_due() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM added WHERE due_at <= now()) THEN
        PERFORM pg_notify('smsgw_callback_due', '');
    END IF;
    RETURN NULL;
END
$$
    """,
    """
CREATE TRIGGER callback_event_notify_due
AFTER INSERT ON callback_event
REFERENCING NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION smsgw_notify_callback_due()
    """,
)

DOWNGRADE = (
    """
DROP TRIGGER callback_event_notify_due ON callback_event
    """,
    """
DROP FUNCTION smsgw_notify_callback_due()
    """,
    """
DROP TRIGGER outbox_notify_due ON outbox
    """,
    """
DROP FUNCTION smsgw_notify_outbox_due()
    """,
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
