"""Periodic work inside `portier run`: APScheduler 3 on the service's event loop.

Jobs: renewal reminders and expiring cards (billing.reminders, over the local mirror), the
sweep of Stripe's `/v1/events` (billing.sweep, when installed), retries of failed events
(the worker's, with its backoff), the outbox (recover abandoned sends, wake it up), the
daily revenue snapshot (billing.revenue, also once at start), settling the team intents a
crash left pending (billing.team_intents.resume, every 15 s) and, hourly, forgetting the
Slack event ids and message copies past their use (billing.teams.forget_old).

Exactly one replica runs them. On PostgreSQL the leader holds a session-level advisory lock
(`pg_try_advisory_lock`) on a dedicated connection, outside the pool: when the leader dies
its connection closes, the lock goes with it, and the next election of another replica
takes over (within `elect_every` seconds). The leader also runs the outbox sender, so the
global send rate holds for the whole deployment. On SQLite there is one process: it leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from billing import broadcasts, team_intents, teams
from billing.db import Database, async_url
from billing.reminders import scan_cards, scan_renewals
from billing.revenue import snapshot
from billing.services import Billing
from bot.outbox import Outbox
from bot.progress import ProgressEditor
from bot.worker import Worker

log = logging.getLogger(__name__)
LOCK_KEY = 0x706F_7274_6965_72  # "portier": one advisory lock id for the scheduler's leader
STOP_TIMEOUT = 15.0
Job = Callable[[], Awaitable[Any]]


class Leadership:
    """Who runs the scans: the holder of an advisory lock on PostgreSQL, else this process."""

    def __init__(self, db: Database, key: int = LOCK_KEY) -> None:
        self.url = db.url
        self.key = key
        self.shared = not db.url.startswith("postgresql")  # SQLite: one process, it leads
        self._engine: AsyncEngine | None = None
        self._conn: AsyncConnection | None = None

    async def check(self) -> bool:
        """Keep or try to take the lead; return whether this replica leads now."""
        if self.shared:
            return True
        if self._conn is not None:
            try:  # the lock lives as long as this connection: make sure it still does
                await self._conn.execute(text("SELECT 1"))
                await self._conn.commit()
                return True
            except Exception as error:  # noqa: BLE001 - the connection died: so did the lock
                log.warning("lost the scheduler lock: %s", type(error).__name__)
                await self._drop()
        try:
            if self._engine is None:  # NullPool: closing the connection really closes it
                self._engine = create_async_engine(async_url(self.url), poolclass=NullPool)
            conn = await self._engine.connect()
            got = (await conn.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                      {"key": self.key})).scalar()
            await conn.commit()
        except Exception as error:  # noqa: BLE001 - the database is away: not the leader
            log.warning("scheduler election failed: %s", type(error).__name__)
            return False
        if got:
            self._conn = conn
            return True
        await conn.close()
        return False

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()
                await conn.close()

    async def release(self) -> None:
        """Give up the lead (closing the connection releases the lock) and close the engine."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.execute(text("SELECT pg_advisory_unlock(:key)"),
                                         {"key": self.key})
                await self._conn.commit()
            await self._drop()
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


class Scheduler:
    """Runs the periodic jobs, on the leading replica only."""

    def __init__(self, billing: Billing, *, outbox: Outbox | None = None,
                 worker: Worker | None = None, elect_every: float = 5.0,
                 scan_every: float = 600.0, sweep_every: float = 900.0,
                 events_every: float = 30.0, outbox_every: float = 5.0,
                 revenue_every: float = 86400.0, broadcasts_every: float = 5.0,
                 tidy_every: float = 3600.0, intents_every: float = 15.0,
                 progress: ProgressEditor | None = None) -> None:
        self.billing = billing
        self.outbox = outbox
        self.worker = worker
        self.progress = progress  # edits the broadcasts' progress messages
        self.leadership = Leadership(billing.db)
        self.leader = False
        self.runs: Counter[str] = Counter()  # job name → runs on this replica
        self._every = {"reminders": scan_every, "sweep": sweep_every, "events": events_every,
                       "outbox": outbox_every, "revenue": revenue_every,
                       "broadcasts": broadcasts_every, "tidy": tidy_every,
                       "intents": intents_every}
        self._jobs: dict[str, Job] = {"reminders": self.scan_reminders, "sweep": self.sweep,
                                      "events": self.retry_events, "outbox": self.tend_outbox,
                                      "revenue": self.snapshot_revenue,
                                      "broadcasts": self.report_broadcasts,
                                      "tidy": self.tidy, "intents": self.resume_intents}
        self._elect_every = elect_every
        self._aps = AsyncIOScheduler(timezone=UTC)

    async def start(self) -> None:
        """Elect, then run every job on its interval (the reminder scan once right away)."""
        await self.elect()
        now = datetime.now(UTC)
        self._aps.add_job(self.elect, "interval", seconds=self._elect_every, id="elect",
                          max_instances=1, coalesce=True)
        for name, every in self._every.items():
            first = now if name in ("reminders", "revenue") else now + timedelta(seconds=every)
            self._aps.add_job(self._leading, "interval", args=[name], seconds=every, id=name,
                              max_instances=1, coalesce=True, misfire_grace_time=None,
                              next_run_time=first)
        self._aps.start()

    async def stop(self) -> None:
        """Stop the jobs and the outbox, and give up the lead."""
        if self._aps.running:
            self._aps.shutdown(wait=False)
        if self.outbox is not None:
            try:  # never let a stuck send hold up the shutdown
                await asyncio.wait_for(self.outbox.stop(), STOP_TIMEOUT)
            except TimeoutError:
                log.warning("the outbox did not stop within %s s", STOP_TIMEOUT)
        self.leader = False
        await self.leadership.release()

    async def elect(self) -> None:
        """Take, keep or lose the lead; the leader runs the outbox sender."""
        leading = await self.leadership.check()
        if leading and not self.leader:
            log.info("this replica runs the scheduled scans")
            if self.outbox is not None:
                await self.outbox.start(recover_all=self.leadership.shared)
        elif self.leader and not leading:
            log.warning("this replica no longer runs the scheduled scans")
            if self.outbox is not None:
                await self.outbox.stop()
        self.leader = leading

    async def _leading(self, name: str) -> None:
        if not self.leader:
            return
        try:
            await self._jobs[name]()
            self.runs[name] += 1
        except Exception:
            log.exception("scheduled job %s failed", name)

    async def scan_reminders(self) -> None:
        """Queue due renewal reminders and card-expiry notices from the mirror."""
        billing = self.billing
        renewals = await scan_renewals(billing.db, billing.catalog, billing.prices,
                                       rosters=billing.rosters)
        cards = await scan_cards(billing.db, billing.catalog, rosters=billing.rosters)
        if renewals.added or cards.added:
            log.info("queued %d renewal reminders, %d card notices", renewals.added,
                     cards.added)
            if self.outbox is not None:
                self.outbox.kick()

    async def tidy(self) -> None:
        """Forget delivered Slack event ids and message copies past their use."""
        async with self.billing.db.session() as session:
            gone = await teams.forget_old(session)
        if gone:
            log.info("forgot %d old chat event id(s) and message copies", gone)

    async def resume_intents(self) -> None:
        """Settle the seat changes and approvals a crash left pending (billing.team_intents)."""
        settled = await team_intents.resume(self.billing)
        if settled:
            log.info("settled %d pending team intent(s)", settled)
            if self.outbox is not None:
                self.outbox.kick()

    async def snapshot_revenue(self) -> None:
        """Store today's revenue state of each subscription that changed (billing.revenue)."""
        changed = await snapshot(self.billing.db)
        log.info("revenue snapshot: %d subscription(s) changed", changed)

    async def sweep(self) -> None:
        """Fetch recent Stripe events that never arrived (billing.sweep, when present)."""
        try:
            module = importlib.import_module("billing.sweep")
        except ModuleNotFoundError as missing:
            if missing.name != "billing.sweep":
                raise
            return
        await module.sweep_events(self.billing, days=3)
        await self.retry_events()

    async def retry_events(self) -> None:
        """Wake the worker: stored events due for another try are processed."""
        if self.worker is not None:
            self.worker.kick()

    async def report_broadcasts(self) -> None:
        """Edit the progress messages of running broadcasts (their last edit is the report);
        queue the report of each other settled broadcast to the admin who sent it."""
        if self.progress is not None:
            await self.progress.tick()  # queues the others' reports too
            if self.outbox is not None:
                self.outbox.kick()
            return
        async with self.billing.db.session() as session:
            added = await broadcasts.queue_reports(session)
        if added and self.outbox is not None:
            self.outbox.kick()

    async def tend_outbox(self) -> None:
        """Mark sends abandoned by a dead sender as unknown; wake the sender."""
        if self.outbox is not None:
            await self.outbox.recover()
            self.outbox.kick()
