"""The Sinch SMS client: one method per operation of the batches API.

The client owns no connection pool: it is handed the process's ``httpx.AsyncClient`` (which owns
limits and timeouts), a base URL (regional, or the simulator's) and an ``httpx.Auth``. It retries
what is safe to retry (429, 5xx, and failures where nothing reached Sinch) under a
:class:`~smsgateway.sinch.retry.RetryPolicy`, and never repeats a send blindly: when a send may
have reached Sinch, it first asks Sinch for a batch carrying the send's ``client_reference``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

import httpx

from smsgateway.sinch._exchange import Answer, Exchanger
from smsgateway.sinch._masking import mask_msisdn
from smsgateway.sinch.auth import ApiTokenAuth, OAuth2ClientCredentials
from smsgateway.sinch.errors import (
    SinchError,
    SinchNotSent,
    SinchOutcomeUnknown,
    SinchRateLimited,
    SinchServerError,
)
from smsgateway.sinch.models import (
    Batch,
    BatchDeliveryReport,
    BatchPage,
    DryRunResult,
    RecipientDeliveryReport,
    SendBatchRequest,
    sinch_timestamp,
    to_wire,
)
from smsgateway.sinch.observer import (
    GuardedObserver,
    NullObserver,
    Operation,
    RetryReason,
    SinchObserver,
)
from smsgateway.sinch.regions import OAUTH2_TOKEN_URL, Region, resolve_base_url
from smsgateway.sinch.retry import RetryPolicy

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100


# Sinch lists recent batches only: a lookup by client_reference starts this long before the
# message was accepted, with room for clock skew between the database and Sinch.
LOOKUP_MARGIN = timedelta(minutes=10)


def _new_request_id() -> str:
    return uuid.uuid4().hex


def _segment(value: str) -> str:
    # '+' is legal in a path segment; keeping it readable matches Sinch's own examples.
    return quote(value, safe="+")


class SinchClient:
    """A client for one Sinch account: a base URL, a path id and the credentials that go with it.

    ``path_id`` is the ``{id}`` in ``/xms/v1/{id}/...``: the service plan id with
    :class:`ApiTokenAuth`, the project id with :class:`OAuth2ClientCredentials`.
    ``request_id_factory`` supplies the ``X-Request-ID`` of calls made without one.
    Every method raises :class:`~smsgateway.sinch.errors.SinchError` subclasses only (and
    ``asyncio.CancelledError``).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        path_id: str,
        auth: httpx.Auth,
        retry_policy: RetryPolicy | None = None,
        observer: SinchObserver | None = None,
        request_id_factory: Callable[[], str] = _new_request_id,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, not {base_url!r}")
        if not path_id:
            raise ValueError("path_id (service plan id or project id) must not be empty")
        self._base_url = base_url.rstrip("/")
        self._auth = auth
        self._policy = retry_policy or RetryPolicy()
        self._observer = GuardedObserver(observer or NullObserver())
        self._exchange = Exchanger(
            http,
            base_url=self._base_url,
            prefix=f"/xms/v1/{quote(path_id, safe='')}",
            auth=auth,
            observer=self._observer,
        )
        self._request_id_factory = request_id_factory

    @classmethod
    def for_api_token(
        cls,
        http: httpx.AsyncClient,
        *,
        service_plan_id: str,
        api_token: str,
        region: Region | str = Region.US,
        base_url: str | None = None,
        retry_policy: RetryPolicy | None = None,
        observer: SinchObserver | None = None,
        request_id_factory: Callable[[], str] = _new_request_id,
    ) -> SinchClient:
        """A client using an API token: any region, the service plan id in the path."""
        return cls(
            http,
            base_url=resolve_base_url(region, oauth2=False, override=base_url),
            path_id=service_plan_id,
            auth=ApiTokenAuth(api_token),
            retry_policy=retry_policy,
            observer=observer,
            request_id_factory=request_id_factory,
        )

    @classmethod
    def for_oauth2(
        cls,
        http: httpx.AsyncClient,
        *,
        project_id: str,
        key_id: str,
        key_secret: str,
        region: Region | str = Region.US,
        base_url: str | None = None,
        token_url: str = OAUTH2_TOKEN_URL,
        retry_policy: RetryPolicy | None = None,
        observer: SinchObserver | None = None,
        request_id_factory: Callable[[], str] = _new_request_id,
    ) -> SinchClient:
        """A client using OAuth2 client credentials: us or eu only, the project id in the path."""
        return cls(
            http,
            base_url=resolve_base_url(region, oauth2=True, override=base_url),
            path_id=project_id,
            auth=OAuth2ClientCredentials(
                http, key_id=key_id, key_secret=key_secret, token_url=token_url
            ),
            retry_policy=retry_policy,
            observer=observer,
            request_id_factory=request_id_factory,
        )

    def __repr__(self) -> str:
        return f"SinchClient(base_url={self._base_url!r}, auth={self._auth!r})"

    async def send_batch(self, batch: SendBatchRequest, *, request_id: str | None = None) -> Batch:
        """Sends ``batch`` and returns it as Sinch stored it (with its ``id``;
        ``found_by_lookup`` says it came from the lookup below).

        Retries 429 and not-sent failures. After a 5xx or an unknown outcome the batch may exist,
        so the client looks for it by ``client_reference`` and returns it if found; only if Sinch
        says there is none does it send again. Without a ``client_reference`` such failures are
        raised as they are. Raises ``SinchOutcomeUnknown`` if that lookup fails.
        """
        operation: Operation = "send_batch"
        rid = request_id or self._request_id_factory()
        payload = to_wire(batch)
        reference = batch.client_reference
        started = self._policy.clock()
        attempts = 0
        while True:
            attempts += 1
            try:
                response = await self._exchange(
                    operation, "POST", "/batches", json=payload, request_id=rid
                )
                return self._exchange.parse(operation, response, Batch)
            except (SinchRateLimited, SinchNotSent) as exc:
                wait = self._next_wait(exc, attempts, started)
                if wait is None:
                    self._note_give_up(operation, exc, attempts, rid)
                    raise
                self._note_retry(operation, exc, attempts, wait, rid)
                await self._policy.sleep(wait)
            except (SinchServerError, SinchOutcomeUnknown) as exc:
                # The request reached Sinch: a batch may exist. Never send again without asking.
                if reference is None:
                    raise
                wait = self._next_wait(exc, attempts, started)
                if wait is not None:
                    # Waiting before the lookup also gives a slow Sinch time to store the batch.
                    await self._policy.sleep(wait)
                existing = await self._lookup_unknown_send(reference, rid, exc)
                if existing is not None:
                    existing._found_by_lookup = True
                    return existing
                if wait is None:
                    self._note_give_up(operation, exc, attempts, rid)
                    raise
                # Sinch has no batch with our reference: this send did not create one.
                self._note_retry(operation, exc, attempts, wait, rid)

    async def dry_run(
        self,
        batch: SendBatchRequest,
        *,
        per_recipient: bool = True,
        number_of_recipients: int | None = None,
        request_id: str | None = None,
    ) -> DryRunResult:
        """How Sinch would split and encode ``batch``, without sending anything."""
        params: dict[str, str | int] = {"per_recipient": "true" if per_recipient else "false"}
        if number_of_recipients is not None:
            params["number_of_recipients"] = number_of_recipients
        response = await self._request(
            "dry_run",
            "POST",
            "/batches/dry_run",
            params=params,
            json=to_wire(batch),
            request_id=request_id,
            retry_unknown=True,  # nothing is sent, so repeating it is harmless
        )
        return self._exchange.parse("dry_run", response, DryRunResult)

    async def get_batch(self, batch_id: str, *, request_id: str | None = None) -> Batch:
        """The batch ``batch_id``; ``SinchNotFound`` if this account has none by that id."""
        response = await self._request(
            "get_batch",
            "GET",
            f"/batches/{_segment(batch_id)}",
            request_id=request_id,
            retry_unknown=True,
        )
        return self._exchange.parse("get_batch", response, Batch)

    async def list_batches(
        self,
        *,
        page: int = 0,
        page_size: int = 30,
        client_reference: str | None = None,
        sender: str | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        request_id: str | None = None,
    ) -> BatchPage:
        """One page (from 0) of batches, newest first, filtered as asked.

        Sinch's default window is recent batches only; pass ``start_date`` to look further back.
        """
        if page < 0 or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page must be >= 0 and page_size within 1..{MAX_PAGE_SIZE}")
        params: dict[str, str | int] = {"page": page, "page_size": page_size}
        if client_reference is not None:
            params["client_reference"] = client_reference
        if sender is not None:
            params["from"] = sender
        if start_date is not None:
            params["start_date"] = sinch_timestamp(start_date)
        if end_date is not None:
            params["end_date"] = sinch_timestamp(end_date)
        response = await self._request(
            "list_batches",
            "GET",
            "/batches",
            params=params,
            request_id=request_id,
            retry_unknown=True,
        )
        return self._exchange.parse("list_batches", response, BatchPage)

    async def iter_batches(
        self,
        *,
        page_size: int = MAX_PAGE_SIZE,
        client_reference: str | None = None,
        sender: str | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        request_id: str | None = None,
    ) -> AsyncIterator[Batch]:
        """Every batch matching the filters, page after page, until a short or empty page."""
        rid = request_id or self._request_id_factory()
        page = 0
        while True:
            result = await self.list_batches(
                page=page,
                page_size=page_size,
                client_reference=client_reference,
                sender=sender,
                start_date=start_date,
                end_date=end_date,
                request_id=rid,
            )
            for batch in result.batches:
                yield batch
            seen = (page + 1) * page_size
            if not result.batches or len(result.batches) < page_size or seen >= result.count:
                return
            page += 1

    async def find_batch(
        self,
        client_reference: str,
        *,
        start_date: datetime | None = None,
        request_id: str | None = None,
    ) -> Batch | None:
        """The earliest batch carrying ``client_reference``, or ``None`` if Sinch has none.

        This is how an unknown outcome is resolved: our message id travels as the reference.
        """
        page = await self.list_batches(
            client_reference=client_reference,
            page_size=MAX_PAGE_SIZE,
            start_date=start_date,
            request_id=request_id,
        )
        return _earliest_with_reference(page, client_reference)

    async def cancel_batch(self, batch_id: str, *, request_id: str | None = None) -> Batch:
        """Cancels a batch not yet sent (e.g. scheduled); ``SinchConflict`` if it is too late.

        Not repeated after an unknown outcome: a second cancel could answer 409 for a batch
        the first one cancelled. Call ``get_batch`` to see its ``canceled`` flag instead.
        """
        response = await self._request(
            "cancel_batch",
            "DELETE",
            f"/batches/{_segment(batch_id)}",
            request_id=request_id,
            retry_unknown=False,
        )
        return self._exchange.parse("cancel_batch", response, Batch)

    async def batch_delivery_report(
        self,
        batch_id: str,
        *,
        report_type: Literal["summary", "full"] = "summary",
        statuses: Sequence[str] = (),
        codes: Sequence[int] = (),
        request_id: str | None = None,
    ) -> BatchDeliveryReport:
        """The batch's delivery report, optionally narrowed to some statuses or codes."""
        params: dict[str, str | int] = {"type": report_type}
        if statuses:
            params["status"] = ",".join(statuses)
        if codes:
            params["code"] = ",".join(str(code) for code in codes)
        response = await self._request(
            "batch_delivery_report",
            "GET",
            f"/batches/{_segment(batch_id)}/delivery_report",
            params=params,
            request_id=request_id,
            retry_unknown=True,
        )
        return self._exchange.parse("batch_delivery_report", response, BatchDeliveryReport)

    async def recipient_delivery_report(
        self, batch_id: str, recipient: str, *, request_id: str | None = None
    ) -> RecipientDeliveryReport:
        """One recipient's delivery report for the batch."""
        response = await self._request(
            "recipient_delivery_report",
            "GET",
            f"/batches/{_segment(batch_id)}/delivery_report/{_segment(recipient)}",
            log_path=f"/batches/{_segment(batch_id)}/delivery_report/{mask_msisdn(recipient)}",
            request_id=request_id,
            retry_unknown=True,
        )
        return self._exchange.parse("recipient_delivery_report", response, RecipientDeliveryReport)

    async def _lookup_unknown_send(
        self, reference: str, request_id: str, cause: SinchError
    ) -> Batch | None:
        """One lookup of a send that may have reached Sinch; if it fails, the outcome is unknown."""
        try:
            response = await self._exchange(
                "list_batches",
                "GET",
                "/batches",
                params={"client_reference": reference, "page": 0, "page_size": MAX_PAGE_SIZE},
                request_id=request_id,
            )
            page = self._exchange.parse("list_batches", response, BatchPage)
        except SinchError as exc:
            raise SinchOutcomeUnknown(
                f"send may have reached Sinch ({cause}) and the lookup by client_reference "
                f"failed ({exc})",
                operation="send_batch",
            ) from exc
        existing = _earliest_with_reference(page, reference)
        if existing is not None:
            logger.info(
                "send resolved by lookup: client_reference %r is batch %s (request %s)",
                reference,
                existing.id,
                request_id,
            )
        return existing

    async def _request(
        self,
        operation: Operation,
        method: str,
        path: str,
        *,
        request_id: str | None,
        retry_unknown: bool,
        params: dict[str, str | int] | None = None,
        json: dict[str, Any] | None = None,
        log_path: str | None = None,
    ) -> Answer:
        """A call that has no side effect worth guarding, retried under the policy.

        ``retry_unknown`` allows repeating it after an unknown outcome (reads, dry runs).
        """
        rid = request_id or self._request_id_factory()
        started = self._policy.clock()
        attempts = 0
        while True:
            attempts += 1
            try:
                return await self._exchange(
                    operation,
                    method,
                    path,
                    params=params,
                    json=json,
                    request_id=rid,
                    log_path=log_path,
                )
            except (SinchRateLimited, SinchServerError, SinchNotSent, SinchOutcomeUnknown) as exc:
                if isinstance(exc, SinchOutcomeUnknown) and not retry_unknown:
                    raise
                wait = self._next_wait(exc, attempts, started)
                if wait is None:
                    self._note_give_up(operation, exc, attempts, rid)
                    raise
                self._note_retry(operation, exc, attempts, wait, rid)
                await self._policy.sleep(wait)

    def _next_wait(self, error: SinchError, attempts: int, started: float) -> float | None:
        """The wait before trying again after ``error``, or ``None`` to give up."""
        retry_after = error.retry_after if isinstance(error, SinchRateLimited) else None
        return self._policy.next_delay(attempts, self._policy.clock() - started, retry_after)

    def _note_retry(
        self, operation: Operation, error: SinchError, attempts: int, wait: float, rid: str
    ) -> None:
        reason = _retry_reason(error)
        self._observer.retried(operation, reason)
        logger.warning(
            "Sinch %s attempt %d failed (%s): %s; retrying after %.2f s (request %s)",
            operation,
            attempts,
            reason,
            error,
            wait,
            rid,
        )

    @staticmethod
    def _note_give_up(operation: Operation, error: SinchError, attempts: int, rid: str) -> None:
        logger.warning(
            "Sinch %s failed after %d attempt(s), giving up: %s (request %s)",
            operation,
            attempts,
            error,
            rid,
        )


def _earliest_with_reference(page: BatchPage, reference: str) -> Batch | None:
    # Filter again here: a server (or proxy) ignoring the filter must not make us adopt
    # somebody else's batch.
    matching = [batch for batch in page.batches if batch.client_reference == reference]
    if not matching:
        return None
    if len(matching) > 1:
        logger.warning(
            "%d Sinch batches carry client_reference %r: duplicates; using the earliest",
            len(matching),
            reference,
        )
    # Sinch lists newest first and stamps milliseconds: of batches created in the same one,
    # the last listed is the earliest.
    return min(
        reversed(matching), key=lambda batch: (batch.created_at is None, batch.created_at or 0)
    )


def _retry_reason(error: SinchError) -> RetryReason:
    if isinstance(error, SinchRateLimited):
        return "rate_limited"
    if isinstance(error, SinchServerError):
        return "server_error"
    if isinstance(error, SinchNotSent):
        return "not_sent"
    return "outcome_unknown"
