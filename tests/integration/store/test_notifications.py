"""Wake-ups: the triggers notify once per committed statement, and the listener comes back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import pytest_asyncio

from smsgateway.store.messages import NewMessage, insert_accepted
from smsgateway.store.notifications import (
    CALLBACK_CHANNEL,
    OUTBOX_CHANNEL,
    NotificationListener,
)
from tests.support.polling import wait_until

pytestmark = pytest.mark.asyncio


def new_message(due_at: datetime) -> NewMessage:
    now = datetime.now(UTC)
    return NewMessage(
        id=uuid.uuid4(),
        tenant="default",
        api_key_id=None,
        sender=None,
        body="Your code is 123456",
        encoding="GSM-7",
        segment_count=1,
        character_count=19,
        recipients=("+46701234567",),
        client_reference=None,
        status="queued" if due_at <= now else "scheduled",
        delivery_report="none",
        send_at=None if due_at <= now else due_at,
        expire_at=None,
        callback_url=None,
        parameters=None,
        max_segments=None,
        created_at=now,
        due_at=due_at,
    )


class Heard:
    """Notifications received on a plain listening connection, by channel."""

    def __init__(self) -> None:
        self.by_channel: dict[str, int] = {}

    def __call__(self, _c: object, _pid: int, channel: str, _payload: object) -> None:
        self.by_channel[channel] = self.by_channel.get(channel, 0) + 1


@pytest_asyncio.fixture
async def heard(database_url: str) -> AsyncIterator[Heard]:
    heard = Heard()
    connection = await asyncpg.connect(database_url)
    await connection.add_listener(OUTBOX_CHANNEL, heard)
    await connection.add_listener(CALLBACK_CHANNEL, heard)
    try:
        yield heard
    finally:
        await connection.close()


async def test_a_group_commit_of_many_accepts_sends_one_notification(
    database_url: str, heard: Heard
) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await insert_accepted(connection, [new_message(datetime.now(UTC)) for _ in range(50)])
        # A sentinel sent after the batch's commit: once it is heard, so is everything before.
        await connection.execute(f"NOTIFY {CALLBACK_CHANNEL}")
    finally:
        await connection.close()
    await wait_until(lambda: CALLBACK_CHANNEL in heard.by_channel, timeout_s=5)
    assert heard.by_channel.get(OUTBOX_CHANNEL) == 1


async def test_messages_scheduled_for_later_wake_nobody(database_url: str, heard: Heard) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    connection = await asyncpg.connect(database_url)
    try:
        await insert_accepted(connection, [new_message(later) for _ in range(3)])
        await connection.execute(f"NOTIFY {CALLBACK_CHANNEL}")
    finally:
        await connection.close()
    await wait_until(lambda: CALLBACK_CHANNEL in heard.by_channel, timeout_s=5)
    assert OUTBOX_CHANNEL not in heard.by_channel


async def test_nothing_is_notified_before_the_transaction_commits(
    database_url: str, heard: Heard
) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        transaction = connection.transaction()
        await transaction.start()
        await insert_accepted(connection, [new_message(datetime.now(UTC))])
        await connection.execute(f"NOTIFY {CALLBACK_CHANNEL}")
        await transaction.rollback()
        await connection.execute(f"NOTIFY {CALLBACK_CHANNEL}, 'after'")
    finally:
        await connection.close()
    await wait_until(lambda: CALLBACK_CHANNEL in heard.by_channel, timeout_s=5)
    assert OUTBOX_CHANNEL not in heard.by_channel


async def test_the_listener_reconnects_and_wakes_everyone_when_its_connection_is_killed(
    database_url: str,
) -> None:
    wakes: list[str] = []
    listener = NotificationListener(database_url, connect_timeout=5, retry_seconds=0.05)
    listener.subscribe(OUTBOX_CHANNEL, lambda: wakes.append("outbox"))
    running = asyncio.create_task(listener.run())
    admin = await asyncpg.connect(database_url)
    try:
        await asyncio.wait_for(listener.wait_listening(), 5)
        assert wakes == ["outbox"]  # the wake-up every (re)connection gives
        await admin.execute(f"NOTIFY {OUTBOX_CHANNEL}")
        await wait_until(lambda: len(wakes) == 2, timeout_s=5)

        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'smsgateway-listener' AND datname = current_database()"
        )
        assert killed == 1
        # Back by itself, and the reconnection woke the subscriber (anything committed while
        # nobody listened is claimed now, not at the next poll).
        await wait_until(lambda: len(wakes) == 3 and listener.listening, timeout_s=5)
        await admin.execute(f"NOTIFY {OUTBOX_CHANNEL}")
        await wait_until(lambda: len(wakes) == 4, timeout_s=5)
    finally:
        await admin.close()
        await listener.stop()
        await asyncio.wait_for(running, 5)
    assert not listener.listening
