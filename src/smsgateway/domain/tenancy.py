"""Who sees what: a key's view of tenant-owned data, and where a STOP applies.

Inbound messages and opt-outs belong to the tenant that owns the receiving number (the
sender the subscriber wrote to). A key sees its own tenant's; an admin key sees every tenant's
and those of numbers assigned to no tenant, which no other key sees.

A STOP applies to the sender it was sent to (``StopScope.SENDER``, the default), as US CTIA
rules have it: an opt-out is per short code or number, and other programs of the same
business keep their consent. An operator whose tenants treat all their numbers as one program
may make a STOP cover every sender of the receiving number's tenant (``StopScope.TENANT``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from smsgateway.domain.api_keys import Scope
from smsgateway.domain.errors import DomainError


class SenderNotAssigned(DomainError):
    """A tenant's key named a sender its tenant does not own."""

    default_code = "sender_not_assigned"

    def __init__(self, sender: str, *, field: str | None = "from") -> None:
        super().__init__(f"{sender} is not one of your tenant's numbers.", field=field)


class SenderOfAnotherTenant(DomainError):
    """A message of one tenant would go from a number assigned to another: its replies and
    STOPs would reach that tenant, so the gateway does not send it."""

    default_code = "sender_of_another_tenant"

    def __init__(self, sender: str, *, default: bool) -> None:
        super().__init__(
            f"The default sender {sender} is assigned to another tenant; name one of your "
            "tenant's numbers in 'from'."
            if default
            else f"{sender} is assigned to another tenant; send from one of your tenant's "
            "numbers, or one assigned to no tenant.",
            field="from",
        )
        self.sender = sender


class StopScope(StrEnum):
    SENDER = "sender"
    TENANT = "tenant"


@dataclass(frozen=True, slots=True)
class Viewer:
    """A key's view: ``tenant`` None means every tenant and unassigned numbers (admin)."""

    tenant: str | None

    @property
    def sees_all(self) -> bool:
        return self.tenant is None


@dataclass(frozen=True, slots=True)
class OptOutTarget:
    """What an opt-out row covers: both None is every tenant and sender (global); ``sender``
    set is that sender whoever sends from it; ``tenant`` alone is every message of the tenant.
    ``tenant`` beside a ``sender`` records the sender's owner, for who may see the row."""

    tenant: str | None
    sender: str | None


def stop_target(scope: StopScope, receiving_number: str | None, owner: str | None) -> OptOutTarget:
    """What a STOP (or START) sent to ``receiving_number``, owned by ``owner``, changes.

    Without a receiving number there is nothing narrower to pin it to: it is global. A number
    no tenant owns is always pinned to itself, whatever the scope."""
    if receiving_number is None:
        return OptOutTarget(None, None)
    if scope is StopScope.TENANT and owner is not None:
        return OptOutTarget(owner, None)
    return OptOutTarget(owner, receiving_number)


def narrowed_to(viewer: Viewer, tenant: str | None) -> Viewer | None:
    """``viewer`` addressing ``tenant``'s rows (None: its own view unchanged): an admin
    narrows to any tenant, another key names only its own; None when it may not."""
    if tenant is None or tenant == viewer.tenant:
        return viewer
    return Viewer(tenant) if viewer.sees_all else None


def viewer_for(tenant: str, scopes: Iterable[str]) -> Viewer:
    """The view of a key of ``tenant`` holding ``scopes``: everything with ``admin``."""
    return Viewer(None if Scope.ADMIN.value in set(scopes) else tenant)
