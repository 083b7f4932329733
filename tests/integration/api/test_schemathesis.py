"""The API against its own OpenAPI schema, by Schemathesis: generated requests to every
operation, never a 5xx, and every answer as documented (status, content type, headers, body).

The gateway runs for real: lifespan, a fresh migrated database, the dispatcher and the Sinch
simulator behind it, on loopback in a background loop (Schemathesis calls synchronously).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import asyncpg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.core.failures import Failure, FailureGroup

from smsgateway.app import create_app
from smsgateway.domain.api_keys import SECRET_BYTES, format_api_key, hash_api_key, visible_prefix
from smsgateway.simulator import SimulatorConfig
from smsgateway.store.api_keys import insert_api_key
from tests.support.background_loop import BackgroundLoop
from tests.support.live_server import live_server
from tests.support.settings import make_settings
from tests.support.sinch_simulator import PLAN_DEFAULT_FROM, running_simulator

pytestmark = pytest.mark.slow

# Per operation; the examples and coverage phases add their own cases on top.
MAX_EXAMPLES = 25
UNLIMITED = "1000000/second"
# Schemathesis builds its coverage cases, credentials included, when it collects the test, so
# the key is made now and stored in each test's database by the fixture.
API_KEY = format_api_key(secrets.token_bytes(SECRET_BYTES))

# The schema is the app's own; building the app opens nothing, so no database is needed here.
schema = schemathesis.openapi.from_dict(
    create_app(make_settings("postgresql://schema-only@127.0.0.1/none")).openapi()
)


@dataclass(frozen=True, slots=True)
class KnownBug:
    """A failure the app has today: Schemathesis's failure ``code`` (ST...) on ``operations``
    (empty: on every operation), when ``matches`` says so. Remove each entry with its fix."""

    code: str
    operations: frozenset[str]
    matches: Callable[[schemathesis.Case, Failure], bool] = lambda case, failure: True

    def covers(self, case: schemathesis.Case, failure: Failure) -> bool:
        return (
            failure.code == self.code
            and (not self.operations or case.operation.label in self.operations)
            and self.matches(case, failure)
        )


def _on(*operations: str) -> frozenset[str]:
    return frozenset(operations)


# "Schema-valid request rejected" (ST202) means the request schema is looser than the app.
KNOWN_BUGS = (
    # Numbers, senders and bodies obey rules no schema can state (libphonenumber's numbering
    # plans, GSM-7 segment limits), so a schema-valid value can still be refused 422/400.
    KnownBug("ST202", _on("POST /v1/messages", "POST /v1/messages/preview", "POST /send-sms")),
    KnownBug(
        "ST202",
        _on("POST /v1/opt-outs", "GET /v1/opt-outs/{msisdn}", "DELETE /v1/opt-outs/{msisdn}"),
    ),
    # Cursors are opaque: a string this API did not issue is refused 422 invalid_cursor, and no
    # schema can say which strings are cursors.
    KnownBug(
        "ST202",
        _on("GET /v1/messages", "GET /v1/inbound-messages", "GET /v1/opt-outs"),
        lambda case, failure: "cursor" in str(getattr(case, "query", None) or ""),
    ),
)


@schema.auth(refresh_interval=None)
class ApiKeyAuth:
    """Sends the API key as X-API-Key, so Schemathesis knows which credential is real (and
    checks that requests without it, or with a wrong one, are refused)."""

    def get(self, case: schemathesis.Case, context: schemathesis.AuthContext) -> str:
        return API_KEY

    def set(self, case: schemathesis.Case, data: str, context: schemathesis.AuthContext) -> None:
        case.headers = {**(case.headers or {}), "X-API-Key": data}


@pytest.fixture
def gateway(database_url: str) -> Iterator[str]:
    """The gateway's base URL, sending to a simulator; its API key has no rate limit."""
    with BackgroundLoop() as background:
        simulator = background.enter(
            running_simulator(SimulatorConfig.for_tests(default_from=PLAN_DEFAULT_FROM))
        )
        app_settings = make_settings(
            database_url,
            dispatcher="on",
            dispatch_poll_seconds=0.02,
            rate_limit=UNLIMITED,
            legacy_wait_seconds=5,
            SINCH_BASE_URL=simulator.base_url,
            SINCH_SERVICE_PLAN_ID=simulator.plan_id,
            SINCH_API_TOKEN=simulator.token,
            SINCH_NUMBER="+12025550123",
        )
        background.run(_store_key(database_url))
        yield background.enter(live_server(create_app(app_settings)))


async def _store_key(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await insert_api_key(
            connection,
            tenant="schemathesis",
            name="schemathesis",
            prefix=visible_prefix(API_KEY),
            key_hash=hash_api_key(API_KEY),
            rate_limit=UNLIMITED,
        )
    finally:
        await connection.close()


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    # The same examples on every run: CI must not fail on a case no earlier run tried. New
    # cases are found by changing the schema (or by running with derandomize off locally).
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation_answers_as_documented(case: schemathesis.Case, gateway: str) -> None:
    try:
        case.call_and_validate(base_url=gateway)
    except FailureGroup as group:
        unknown = [
            failure
            for failure in group.exceptions
            if not any(bug.covers(case, failure) for bug in KNOWN_BUGS)
        ]
        if unknown:
            raise
