"""A command that cannot reach its database says so in one line: where, never the password."""

from __future__ import annotations

import pytest

from tests.conftest import database_dsn
from tests.support.processes import run_command as run

pytestmark = pytest.mark.slow


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens once the socket is closed


@pytest.mark.parametrize("args", [("migrate",), ("apikey", "list"), ("serve", "--migrate")])
def test_no_server_at_the_address(args: tuple[str, ...]) -> None:
    port = closed_port()
    result = run(f"postgresql://gw:hunter2-secret@127.0.0.1:{port}/smsgw", *args)

    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [lines[0]], result.stderr
    assert lines[0].startswith(f"error: cannot reach the database at 127.0.0.1:{port}/smsgw: ")
    assert "hunter2" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_no_such_database(postgres_server_dsn: str) -> None:
    result = run(database_dsn(postgres_server_dsn, "smsgw_does_not_exist"), "migrate")

    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot reach the database at ")
    assert line.endswith('/smsgw_does_not_exist: database "smsgw_does_not_exist" does not exist')


@pytest.mark.parametrize("args", [("apikey", "list"), ("webhooks",)])
def test_a_database_not_migrated_yet_says_to_migrate(
    empty_database_url: str, args: tuple[str, ...]
) -> None:
    # A real-looking account, so `webhooks` reads the generated path secret from Postgres.
    account = {"SINCH_SERVICE_PLAN_ID": "plan123", "SINCH_API_TOKEN": "token-0123456789"}
    result = run(empty_database_url, *args, PUBLIC_BASE_URL="https://sms.example.com", **account)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1:] == [
        "error: the database has no gateway tables yet: run `smsgateway migrate` "
        "(or `smsgateway serve --migrate`) first"
    ]
