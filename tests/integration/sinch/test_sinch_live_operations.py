"""Every operation of the Sinch client against the simulator, over real sockets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from smsgateway.domain.segments import Encoding, count_segments
from smsgateway.sinch import SinchClient, SinchConflict, SinchNotFound
from smsgateway.sinch.models import DeliveryReportType, SendBatchRequest
from tests.integration.sinch.sinch_live import new_reference
from tests.support.polling import wait_until
from tests.support.sinch_simulator import RunningSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

ANN = "+15551230001"
BOB = "+15551230002"
# How the gateway names an encoding, and how a dry run spells it.
DRY_RUN_ENCODING = {Encoding.GSM7: "text", Encoding.UCS2: "unicode"}


def in_seconds(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def test_send_batch_returns_the_stored_batch(
    client: SinchClient, sim: RunningSimulator
) -> None:
    reference = new_reference()

    batch = await client.send_batch(
        SendBatchRequest(
            to=[ANN, BOB],
            body="Your code is 1234",
            from_="+15550001111",
            delivery_report=DeliveryReportType.NONE,
            client_reference=reference,
        )
    )

    assert len(batch.id) == 26
    assert batch.to == [ANN, BOB]
    assert batch.from_ == "+15550001111"
    assert batch.body == "Your code is 1234"
    assert batch.client_reference == reference
    assert batch.canceled is False
    assert batch.created_at is not None
    assert batch.created_at.tzinfo is not None
    assert await sim.batch_count(reference) == 1


async def test_send_batch_without_sender_uses_the_plans_default(client: SinchClient) -> None:
    batch = await client.send_batch(SendBatchRequest(to=[ANN], body="hi"))

    assert batch.from_ == "+15550009999"
    assert batch.client_reference is None


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("Hello there", id="gsm-one-part"),
        pytest.param("x" * 160, id="gsm-160-one-part"),
        pytest.param("x" * 161, id="gsm-161-two-parts"),
        pytest.param("€" * 80, id="gsm-extension-160-septets"),
        pytest.param("a" + "€" * 80, id="gsm-extension-never-split"),
        pytest.param("Привет, мир", id="ucs2-one-part"),
        pytest.param("ł" * 71, id="ucs2-71-two-parts"),
        pytest.param("😀" * 35, id="ucs2-surrogates-70-units"),
        pytest.param("a" + "😀" * 35, id="ucs2-surrogate-pair-never-split"),
        pytest.param("x" * 159 + "ł", id="one-non-gsm-makes-it-ucs2"),
    ],
)
async def test_dry_run_agrees_with_the_gateways_segment_counting(
    client: SinchClient, sim: RunningSimulator, body: str
) -> None:
    expected = count_segments(body)

    result = await client.dry_run(SendBatchRequest(to=[ANN, BOB], body=body))

    assert result.number_of_recipients == 2
    assert result.number_of_messages == 2 * expected.segments
    assert [row.encoding for row in result.per_recipient] == [
        DRY_RUN_ENCODING[expected.encoding]
    ] * 2
    assert [row.number_of_parts for row in result.per_recipient] == [expected.segments] * 2
    assert (await sim.client.get("/_admin/stats")).json()["batches"] == 0


async def test_dry_run_renders_parameters_per_recipient(client: SinchClient) -> None:
    result = await client.dry_run(
        SendBatchRequest(
            to=[ANN, BOB],
            body="Hi ${name}",
            parameters={"name": {ANN: "Ann", "default": "there"}},
        ),
        number_of_recipients=1,
    )

    assert result.number_of_recipients == 2
    assert result.number_of_messages == 2
    assert [(row.recipient.lstrip("+"), row.body) for row in result.per_recipient] == [
        (ANN.lstrip("+"), "Hi Ann")
    ]


async def test_dry_run_without_per_recipient_lists_nobody(client: SinchClient) -> None:
    result = await client.dry_run(SendBatchRequest(to=[ANN], body="hi"), per_recipient=False)

    assert result.number_of_messages == 1
    assert result.per_recipient == []


async def test_get_batch_returns_what_send_stored(client: SinchClient) -> None:
    sent = await client.send_batch(
        SendBatchRequest(to=[ANN], body="hello", client_reference=new_reference())
    )

    fetched = await client.get_batch(sent.id)

    assert fetched.id == sent.id
    assert fetched.client_reference == sent.client_reference
    assert fetched.created_at == sent.created_at


async def test_get_batch_of_an_unknown_id_is_not_found(client: SinchClient) -> None:
    with pytest.raises(SinchNotFound) as caught:
        await client.get_batch("01AAAAAAAAAAAAAAAAAAAAAAAA")

    assert caught.value.status == 404
    assert caught.value.code == "not_found"


async def test_list_batches_pages_through_one_client_reference(client: SinchClient) -> None:
    reference = new_reference()
    sent = [
        await client.send_batch(
            SendBatchRequest(to=[ANN], body=f"n{n}", client_reference=reference)
        )
        for n in range(5)
    ]
    await client.send_batch(SendBatchRequest(to=[ANN], body="other", client_reference="other"))

    pages = [
        await client.list_batches(client_reference=reference, page=page, page_size=2)
        for page in range(4)
    ]

    assert [page.count for page in pages] == [5] * 4
    assert [page.page for page in pages] == [0, 1, 2, 3]
    assert [len(page.batches) for page in pages] == [2, 2, 1, 0]
    listed = [batch.id for page in pages for batch in page.batches]
    newest_first = [batch.id for batch in reversed(sent)]
    assert listed == newest_first
    iterated = [
        batch.id async for batch in client.iter_batches(client_reference=reference, page_size=2)
    ]
    assert iterated == newest_first
    found = await client.find_batch(reference)
    assert found is not None
    assert found.id == sent[0].id


async def test_find_batch_of_an_unused_reference_is_none(client: SinchClient) -> None:
    assert await client.find_batch(new_reference()) is None


async def test_cancel_before_send_at_cancels(client: SinchClient) -> None:
    scheduled = await client.send_batch(
        SendBatchRequest(to=[ANN], body="later", send_at=in_seconds(3600))
    )

    canceled = await client.cancel_batch(scheduled.id)

    assert canceled.id == scheduled.id
    assert canceled.canceled is True
    assert (await client.get_batch(scheduled.id)).canceled is True


async def test_cancel_after_send_is_a_conflict(client: SinchClient) -> None:
    sent = await client.send_batch(SendBatchRequest(to=[ANN], body="now"))

    with pytest.raises(SinchConflict) as caught:
        await client.cancel_batch(sent.id)

    assert caught.value.status == 409
    assert caught.value.code == "batch_already_sent"
    assert caught.value.operation == "cancel_batch"
    assert (await client.get_batch(sent.id)).canceled is False


async def test_batch_delivery_report_summary_and_full(client: SinchClient) -> None:
    sent = await client.send_batch(
        SendBatchRequest(to=[ANN, BOB], body="hello", client_reference=new_reference())
    )

    async def all_delivered() -> bool:
        report = await client.batch_delivery_report(sent.id)
        return [(s.status, s.count) for s in report.statuses] == [("Delivered", 2)]

    await wait_until(all_delivered, message="both recipients delivered")
    summary = await client.batch_delivery_report(sent.id, report_type="summary")
    full = await client.batch_delivery_report(sent.id, report_type="full")

    assert summary.type == "delivery_report_sms"
    assert summary.batch_id == sent.id
    assert summary.total_message_count == 2
    assert summary.client_reference == sent.client_reference
    assert [(s.code, s.status, s.count, s.recipients) for s in summary.statuses] == [
        (0, "Delivered", 2, [])
    ]
    assert [(s.code, sorted(s.recipients)) for s in full.statuses] == [(0, sorted([ANN, BOB]))]


async def test_batch_delivery_report_filters_by_status_and_code(client: SinchClient) -> None:
    sent = await client.send_batch(SendBatchRequest(to=[ANN], body="hello"))
    await wait_until(lambda: _delivered(client, sent.id), message="the recipient delivered")

    by_status = await client.batch_delivery_report(sent.id, statuses=["Failed"])
    by_code = await client.batch_delivery_report(sent.id, codes=[0])

    assert by_status.statuses == []
    assert [s.count for s in by_code.statuses] == [1]


@pytest.mark.parametrize("written", [ANN, ANN.lstrip("+")], ids=["with-plus", "without-plus"])
async def test_recipient_delivery_report(client: SinchClient, written: str) -> None:
    sent = await client.send_batch(
        SendBatchRequest(to=[ANN], body="hello", client_reference=new_reference())
    )
    await wait_until(lambda: _delivered(client, sent.id), message="the recipient delivered")

    report = await client.recipient_delivery_report(sent.id, written)

    assert report.type == "recipient_delivery_report_sms"
    assert report.batch_id == sent.id
    assert report.recipient.lstrip("+") == ANN.lstrip("+")
    assert (report.code, report.status) == (0, "Delivered")
    assert report.client_reference == sent.client_reference
    assert report.encoding == "GSM"
    assert report.number_of_message_parts == 1
    assert report.at.tzinfo is not None


async def test_recipient_delivery_report_of_a_stranger_is_not_found(client: SinchClient) -> None:
    sent = await client.send_batch(SendBatchRequest(to=[ANN], body="hello"))

    with pytest.raises(SinchNotFound):
        await client.recipient_delivery_report(sent.id, BOB)


async def _delivered(client: SinchClient, batch_id: str) -> bool:
    report = await client.batch_delivery_report(batch_id)
    return bool(report.statuses) and all(s.status == "Delivered" for s in report.statuses)
