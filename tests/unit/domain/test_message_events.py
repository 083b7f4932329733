"""Every event kind and status the store can write, and every inbound type, is one the API's
enums name: a value outside them would fail the answer's validation (a 500)."""

import importlib
import pkgutil
import re
from typing import get_args

from hypothesis import given
from hypothesis import strategies as st

import smsgateway.store
from smsgateway.domain.inbound import SINCH_INBOUND_TYPES, InboundType, inbound_type
from smsgateway.domain.message_events import MessageEventKind, ended_with, event_status
from smsgateway.domain.status import (
    MessageStatus,
    RecipientStatus,
    derive_message_status,
)
from smsgateway.store.dispatch import PENDING_STATUSES, FinalStatus

_LITERAL = re.compile(r"'([a-z_]+)'")
_STATUS_VALUES = {status.value for status in RecipientStatus} | {
    status.value for status in MessageStatus
}


def _event_statements() -> list[tuple[str, str]]:
    """Every SQL constant in ``smsgateway.store`` that writes ``sms_event`` rows."""
    found = []
    for module_info in pkgutil.iter_modules(smsgateway.store.__path__):
        module = importlib.import_module(f"smsgateway.store.{module_info.name}")
        for name, value in vars(module).items():
            if isinstance(value, str) and "INSERT INTO sms_event" in value:
                found.append((f"{module_info.name}.{name}", value))
    return found


def test_the_store_writes_events_in_several_places() -> None:
    # The scan below is only worth something if it finds the statements.
    assert len(_event_statements()) >= 8


def _written(statement: str) -> dict[str, str]:
    """The expression each column of the statement's ``sms_event`` row is written from."""
    insert = statement[statement.index("INSERT INTO sms_event") :]
    columns = [c.strip() for c in insert[insert.index("(") + 1 : insert.index(")")].split(",")]
    rest = insert[insert.index(")") + 1 :].lstrip()
    values = rest.startswith("VALUES")
    rest = rest[rest.index("(") + 1 :] if values else rest.removeprefix("SELECT")
    expressions, depth, current = [], 0, ""
    for char in rest:
        if char == "," and depth == 0:
            expressions.append(current.strip())
            current = ""
            continue
        depth += (char == "(") - (char == ")")
        if depth < 0 or (depth == 0 and re.match(r"\s+FROM\s", current[-6:] + char)):
            break
        current += char
    expressions.append(current.strip())
    return dict(zip(columns, expressions, strict=False))


def test_every_kind_and_status_the_store_writes_is_in_the_enums() -> None:
    kinds = set(MessageEventKind)
    for name, statement in _event_statements():
        written = _written(statement)
        for column, allowed in (("kind", kinds), ("status", _STATUS_VALUES)):
            literal = _LITERAL.fullmatch(written.get(column, "NULL"))
            assert literal is None or literal.group(1) in allowed, (name, column, written)
        # A kind not written as a literal is a parameter, typed and checked below.
        assert _LITERAL.fullmatch(written["kind"]) or written["kind"].startswith("$"), name


def test_dispatch_ends_a_message_with_a_kind() -> None:
    assert set(get_args(FinalStatus)) <= set(MessageEventKind)


@given(st.sets(st.sampled_from(sorted(set(RecipientStatus) - set(PENDING_STATUSES))), min_size=1))
def test_every_status_an_ended_message_derives_names_a_kind(
    statuses: set[RecipientStatus],
) -> None:
    # Every recipient opted out, or was final or handed over already (store.dispatch).
    ended = derive_message_status({*statuses, RecipientStatus.OPTED_OUT})
    assert ended_with(ended) in set(MessageEventKind)


def test_kinds_named_for_statuses_are_the_final_message_statuses_and_submitted() -> None:
    named_for_status = {kind.value for kind in MessageEventKind} & {
        status.value for status in MessageStatus
    }
    assert named_for_status == {
        status.value
        for status in MessageStatus
        if status not in (MessageStatus.QUEUED, MessageStatus.SCHEDULED)
    }


@given(st.sampled_from(sorted(_STATUS_VALUES)))
def test_every_stored_status_reads_back(value: str) -> None:
    assert event_status(value) == value


@given(st.one_of(st.none(), st.text(max_size=20), st.sampled_from(sorted(SINCH_INBOUND_TYPES))))
def test_any_inbound_type_is_shown_as_one_of_the_enum(raw: str | None) -> None:
    shown = inbound_type(raw)
    assert shown in set(InboundType)
    assert (shown == raw) is (raw in SINCH_INBOUND_TYPES)
