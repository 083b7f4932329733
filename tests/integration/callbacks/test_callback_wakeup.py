"""A queued status callback goes out without waiting for the callback worker's poll."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from smsgateway.domain.backoff import BackoffPolicy
from smsgateway.domain.standard_webhooks import SigningSecret
from smsgateway.services.callbacks import CallbackDeliverer, CallbackPolicy
from smsgateway.store.notifications import CALLBACK_CHANNEL, NotificationListener
from smsgateway.store.pool import create_pool
from smsgateway.workers.callbacks import CallbackWorker, CallbackWorkerConfig
from tests.integration.callbacks.harness import SECRET, gateway, report, sent_message
from tests.support.receiver import WebhookReceiver

pytestmark = pytest.mark.asyncio

Receiver = tuple[WebhookReceiver, str]


async def test_a_report_s_callback_is_posted_within_a_second_despite_a_10s_poll(
    database_url: str, api_key: str, receiver: Receiver
) -> None:
    recorder, base_url = receiver
    pool = await create_pool(
        database_url, min_size=0, max_size=4, command_timeout=5.0, connect_timeout=2.0
    )
    http = httpx.AsyncClient(timeout=2.0, trust_env=False)
    policy = CallbackPolicy(
        secrets=(SigningSecret.parse(SECRET),),
        allow_private=True,
        timeout_seconds=2.0,
        backoff=BackoffPolicy(
            base_delay=0.05, max_delay=0.2, max_retry_after=0.2, max_age=timedelta(seconds=60)
        ),
    )
    config = CallbackWorkerConfig(poll_interval=10.0, lease_seconds=10.0)
    worker = CallbackWorker(pool, CallbackDeliverer(pool, http, policy, config.worker_id), config)
    listener = NotificationListener(database_url, connect_timeout=5)
    listener.subscribe(CALLBACK_CHANNEL, worker.wake)
    tasks = [asyncio.create_task(worker.run()), asyncio.create_task(listener.run())]
    try:
        await asyncio.wait_for(listener.wait_listening(), 5)
        async with gateway(database_url, api_key) as client:
            message_id, batch = await sent_message(
                client, database_url, callback_url=f"{base_url}/hooks/sms"
            )
            # The submitted event: once it is posted, the worker has nothing due and sleeps.
            await recorder.wait_for(1, path="/hooks/sms", timeout_s=15)
            assert await report(client, batch, message_id, "Delivered", 0, "2026-11-26T10:02:42Z")
            await recorder.wait_for(2, path="/hooks/sms", timeout_s=1.0)
    finally:
        await listener.stop()
        await worker.stop(1.0)
        await asyncio.gather(*tasks)
        await http.aclose()
        await pool.close()
