"""The retention sweep: apply stranded early reports, then delete what is past keeping.

Rules (also in the README and ``.env.example``), each a step of one sweep:

1. **Early reports.** A delivery report kept because its batch id was not recorded yet is
   applied by the dispatcher right after it records the batch id; should that have failed, the
   sweep applies it (``store.reports.apply_unmatched``, which applies each report once).
2. **Unmatched reports** (kept early or unprocessable) are deleted once older than
   ``SMSGW_UNMATCHED_REPORT_RETENTION_DAYS``.
3. **Idempotency keys** are deleted after their 24 hours; nothing else deletes them.
4. **Webhook nonces** are deleted after twice the signature window, when no timestamp the
   webhook accepts can carry them again.
5. **Protection counters** (velocity buckets, spend totals) are deleted once idle for 62 days:
   their period has ended and their window has drained (``store.protection``).
6. **Personal data past its tenant's window** (SMSGW_DELETE_AFTER_DAYS and
   SMSGW_REDACT_AFTER_DAYS, or the tenant's own): messages with nothing pending, by the time
   of their last change, and inbound messages are deleted, then the younger ones redacted
   (``services.personal_data``; what "pending" means is in ``store.personal_data``).

A failing step is logged and counted, and the others still run; the next sweep tries again.
Sweeps in several processes may overlap: every step is safe to run concurrently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from smsgateway.domain.retention import RetentionWindow
from smsgateway.observability import retention_metrics as metrics
from smsgateway.services import personal_data
from smsgateway.services.personal_data import Pause, Swept
from smsgateway.settings import Settings
from smsgateway.store import protection, reports, retention

if TYPE_CHECKING:
    import asyncpg

    from smsgateway.store.pool import Connection

logger = logging.getLogger(__name__)

ACQUIRE_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long things are kept, and how many rows one statement deletes (or batches one
    sweep applies) at most."""

    unmatched_report_max_age: timedelta
    webhook_nonce_max_age: timedelta
    batch_size: int = 1000
    personal_data: RetentionWindow = field(default_factory=RetentionWindow)
    # After each personal-data statement that changed rows: the sweep yields the database.
    batch_pause: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.batch_pause < timedelta(0):
            raise ValueError("batch_pause must not be negative")

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(
            unmatched_report_max_age=timedelta(days=settings.unmatched_report_retention_days),
            # A timestamp may be max_age old or max_age ahead: a nonce can come back for twice it.
            webhook_nonce_max_age=timedelta(seconds=2 * settings.webhook_signature_max_age_seconds),
            personal_data=RetentionWindow(settings.redact_after_days, settings.delete_after_days),
            batch_pause=timedelta(milliseconds=settings.retention_pause_ms),
        )


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What one sweep did; ``failed_steps`` names the steps that raised."""

    reports_applied: int = 0
    unmatched_reports_deleted: int = 0
    idempotency_keys_deleted: int = 0
    webhook_nonces_deleted: int = 0
    failed_steps: tuple[str, ...] = ()
    protection_counters_deleted: int = 0
    personal_data_deleted: Swept = field(default_factory=Swept)
    personal_data_redacted: Swept = field(default_factory=Swept)


class RetentionSweeper:
    """Runs sweeps on ``pool``; safe to share, and to run in several processes at once.
    ``sleep`` takes the policy's ``batch_pause`` in seconds (tests pass a recorder)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        policy: RetentionPolicy,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._pool = pool
        self._policy = policy
        self._sleep = sleep

    @property
    def policy(self) -> RetentionPolicy:
        return self._policy

    async def sweep(self) -> SweepResult:
        """One pass of every step, in the order of the module docstring."""
        failed: list[str] = []
        applied = await self._step("apply_reports", self._apply_reports, failed)
        reports_deleted = await self._step("unmatched_reports", self._delete_reports, failed)
        keys_deleted = await self._step("idempotency_keys", self._delete_keys, failed)
        nonces_deleted = await self._step("webhook_nonces", self._delete_nonces, failed)
        counters_deleted = await self._step("protection_counters", self._delete_counters, failed)
        deleted = await self._swept("personal_data_deleted", personal_data.delete_expired, failed)
        redacted = await self._swept("personal_data_redacted", personal_data.redact_expired, failed)
        for table, rows in _by_table(deleted):
            metrics.ROWS_DELETED.labels(table).inc(rows)
        for table, rows in _by_table(redacted):
            metrics.ROWS_REDACTED.labels(table).inc(rows)
        metrics.ROWS_DELETED.labels("protection_counter").inc(counters_deleted)
        metrics.REPORTS_APPLIED.inc(applied)
        metrics.ROWS_DELETED.labels("unmatched_report").inc(reports_deleted)
        metrics.ROWS_DELETED.labels("idempotency_key").inc(keys_deleted)
        metrics.ROWS_DELETED.labels("webhook_nonce").inc(nonces_deleted)
        metrics.SWEEPS.labels("error" if failed else "ok").inc()
        result = SweepResult(
            applied,
            reports_deleted,
            keys_deleted,
            nonces_deleted,
            tuple(failed),
            counters_deleted,
            deleted,
            redacted,
        )
        if applied or reports_deleted or keys_deleted or nonces_deleted:
            logger.info(
                "retention: applied %d kept report(s); deleted %d unmatched report(s), "
                "%d idempotency key(s), %d webhook nonce(s)",
                applied,
                reports_deleted,
                keys_deleted,
                nonces_deleted,
            )
        if deleted.total or redacted.total:
            logger.info(
                "retention: personal data past its window: deleted %s; redacted %s",
                deleted,
                redacted,
            )
        return result

    async def _swept(
        self,
        name: str,
        run: Callable[[Connection, RetentionWindow, int, Pause], Awaitable[Swept]],
        failed: list[str],
    ) -> Swept:
        try:
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
                return await run(
                    connection, self._policy.personal_data, self._policy.batch_size, self._pause
                )
        except Exception:
            logger.warning(
                "retention step %s failed; the next sweep tries again", name, exc_info=True
            )
            metrics.STEP_ERRORS.labels(name).inc()
            failed.append(name)
            return Swept()

    async def _pause(self) -> None:
        # Each statement commits on its own, so no lock is held meanwhile; the connection stays
        # checked out, as for the whole sweep.
        seconds = self._policy.batch_pause.total_seconds()
        if seconds > 0:
            await self._sleep(seconds)

    async def _step(
        self, name: str, run: Callable[[Connection], Awaitable[int]], failed: list[str]
    ) -> int:
        try:
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
                return await run(connection)
        except Exception:
            logger.warning(
                "retention step %s failed; the next sweep tries again", name, exc_info=True
            )
            metrics.STEP_ERRORS.labels(name).inc()
            failed.append(name)
            return 0

    async def _apply_reports(self, connection: Connection) -> int:
        # One pass, each batch alone: a batch whose reports cannot be applied must neither keep
        # a sweep going nor hold back the others.
        applied = 0
        batch_ids = await retention.batches_with_kept_reports(connection, self._policy.batch_size)
        for batch_id in batch_ids:
            try:
                applied += len(await reports.apply_unmatched(connection, batch_id))
            except Exception:
                if connection.is_closed():
                    raise
                logger.warning(
                    "retention: kept reports of batch %s not applied", batch_id, exc_info=True
                )
                metrics.STEP_ERRORS.labels("apply_reports").inc()
        return applied

    async def _delete_reports(self, connection: Connection) -> int:
        age = self._policy.unmatched_report_max_age
        return await self._until_short(
            lambda limit: retention.delete_unmatched_reports(
                connection, older_than=age, limit=limit
            )
        )

    async def _delete_keys(self, connection: Connection) -> int:
        return await self._until_short(
            lambda limit: retention.delete_expired_idempotency_keys(connection, limit=limit)
        )

    async def _delete_nonces(self, connection: Connection) -> int:
        age = self._policy.webhook_nonce_max_age
        return await self._until_short(
            lambda limit: retention.delete_webhook_nonces(connection, older_than=age, limit=limit)
        )

    async def _delete_counters(self, connection: Connection) -> int:
        return await self._until_short(
            lambda limit: protection.delete_idle_counters(connection, limit=limit)
        )

    async def _until_short(self, delete: Callable[[int], Awaitable[int]]) -> int:
        """Repeats ``delete`` (one statement of at most a batch) until it deletes fewer."""
        total = 0
        while True:
            deleted = await delete(self._policy.batch_size)
            total += deleted
            if deleted < self._policy.batch_size:
                return total


def _by_table(swept: Swept) -> tuple[tuple[str, int], ...]:
    return (
        ("sms_log", swept.messages),
        ("inbound_message", swept.inbound_messages),
        ("callback_event", swept.tenant_events),
    )
