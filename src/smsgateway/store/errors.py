"""Store exceptions: what the rest of the gateway may catch from persistence.

StoreError
 ├── SchemaNotFoundError     the migrations folder is missing
 └── DatabaseUnavailableError  no connection within the deadline; retry later
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every persistence error."""


class SchemaNotFoundError(StoreError):
    """The Alembic migrations are not where the settings say."""


class DatabaseUnavailableError(StoreError):
    """Postgres could not be reached in time; the operation did nothing and may be retried."""
