"""Inbound ``from``/``to`` stored as the gateway now reads them: numbers in E.164 with ``+``.

Sinch may write a number without its ``+`` (``"to": "11203453453"``). The gateway stored
``to`` as given, so ``GET /v1/inbound-messages?to=%2B1...`` found nothing, and it put a ``+``
before any ``from``, even an alphanumeric id (``+ACME``). This fixes rows stored so, with the
unambiguous part of ``phone.normalise_address``:

- 9 to 15 digits without ``+`` (no short code is that long) get their ``+``;
- a ``from`` that is ``+`` before something other than digits gets back what Sinch sent.

Rows with 3 to 8 digits are left alone: whether they are a short code or a number is decided
by libphonenumber, which SQL cannot ask. One statement touching only the rows to fix (row
locks, no table rewrite, no lock that holds up webhook inserts), a no-op on an empty table.
Downgrade leaves the rows as they are (E.164 with ``+`` is what the old code stored for
every sender too).

Revision ID: 20261203_inbound_e164
Revises: 20261128_webhook_nonces
Create Date: 2026-12-03
"""

from alembic import op

revision = "20261203_inbound_e164"
down_revision = "20261128_webhook_nonces"
branch_labels = None
depends_on = None

_NUMBER_WITHOUT_PLUS = r"'^[1-9][0-9]{8,14}$'"
_PLUS_BEFORE_AN_ID = (
    r"(sender ~ '^\+' AND sender !~ '^\+[0-9]*$'"
    " AND jsonb_typeof(payload -> 'from') = 'string')"
)

UPGRADE = (
    f"""
UPDATE inbound_message
SET recipient = CASE WHEN recipient ~ {_NUMBER_WITHOUT_PLUS} THEN '+' || recipient
                     ELSE recipient END,
    sender = CASE WHEN sender ~ {_NUMBER_WITHOUT_PLUS} THEN '+' || sender
                  WHEN {_PLUS_BEFORE_AN_ID} THEN btrim(payload ->> 'from')
                  ELSE sender END
WHERE recipient ~ {_NUMBER_WITHOUT_PLUS}
   OR sender ~ {_NUMBER_WITHOUT_PLUS}
   OR {_PLUS_BEFORE_AN_ID}
    """,
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    """The fixed rows stay fixed: the old code reads them as well as the new."""
