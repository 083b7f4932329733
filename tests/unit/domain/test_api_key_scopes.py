"""Scopes: parsed from the CLI's options; admin grants everything."""

from __future__ import annotations

import pytest

from smsgateway.domain.api_keys import Scope, grants, parse_scopes
from smsgateway.domain.tenancy import (
    OptOutTarget,
    StopScope,
    Viewer,
    narrowed_to,
    stop_target,
    viewer_for,
)


def test_scopes_are_parsed_from_repeated_and_comma_separated_options() -> None:
    assert parse_scopes(["send", "read, admin"]) == frozenset(Scope)
    with pytest.raises(ValueError, match="'write' is not a scope"):
        parse_scopes(["write"])
    with pytest.raises(ValueError, match="at least one scope"):
        parse_scopes([" , "])


def test_admin_grants_everything_and_other_scopes_only_themselves() -> None:
    assert grants({"admin"}, Scope.SEND)
    assert grants({"admin"}, Scope.READ)
    assert grants({"read"}, Scope.READ)
    assert not grants({"read"}, Scope.SEND)
    assert not grants({"send", "read"}, Scope.ADMIN)


def test_an_admin_key_views_every_tenant_and_another_key_its_own() -> None:
    assert viewer_for("acme", {"read", "admin"}).sees_all
    assert viewer_for("acme", {"read", "send"}).tenant == "acme"


@pytest.mark.parametrize(
    ("scope", "number", "owner", "target"),
    [
        (StopScope.SENDER, "+12025550101", "acme", OptOutTarget("acme", "+12025550101")),
        (StopScope.TENANT, "+12025550101", "acme", OptOutTarget("acme", None)),
        # A number no tenant owns is pinned to itself whatever the scope.
        (StopScope.TENANT, "+12025550101", None, OptOutTarget(None, "+12025550101")),
        (StopScope.SENDER, None, None, OptOutTarget(None, None)),
    ],
)
def test_where_a_stop_applies(
    scope: StopScope, number: str | None, owner: str | None, target: OptOutTarget
) -> None:
    assert stop_target(scope, number, owner) == target


def test_an_admin_narrows_to_any_tenant_and_another_key_names_only_its_own() -> None:
    admin, acme = Viewer(None), Viewer("acme")
    assert narrowed_to(admin, None) == admin
    assert narrowed_to(admin, "globex") == Viewer("globex")
    assert narrowed_to(acme, None) == acme
    assert narrowed_to(acme, "acme") == acme
    assert narrowed_to(acme, "globex") is None
