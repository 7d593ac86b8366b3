"""Background work: process stored Stripe events, then wake the outbox for the notices they
queued (bot.outbox delivers them)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from billing import events as _event_handlers  # noqa: F401 - registers the event handlers
from billing import notice_events as _notice_handlers  # noqa: F401 - after the mirror's (1)
from billing import seat_events as _seat_handlers  # noqa: F401 - a team's seats changed
from billing.services import Billing
from billing.webhooks import process_pending
from bot.outbox import Outbox, Sender
from bot.outbox import Unreachable as Unreachable  # re-exported for the channels
from handlers.portal import Portal

log = logging.getLogger(__name__)
# (1) billing.notice_events imports billing.mirror_events before registering its handlers, and
# the mirror registers with first=True: in every event the mirror is updated before notices.


class Worker:
    """Processes events and sends notices whenever kicked, and every few seconds anyway."""

    def __init__(self, billing: Billing, portal: Portal, *, interval: float = 5.0,
                 outbox: Outbox | None = None) -> None:
        self.billing = billing
        self.portal = portal
        self.interval = interval
        self.outbox = outbox
        self._senders: dict[str, Sender] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()

    @property
    def senders(self) -> dict[str, Sender]:
        """Return the senders notices go through, by channel (the outbox's)."""
        return self.outbox.senders if self.outbox is not None else self._senders

    def kick(self) -> None:
        """Ask the worker to run now."""
        self._idle.clear()
        self._wake.set()

    def start(self) -> None:
        """Start the background loop."""
        self._task = asyncio.create_task(self._loop(), name="portier-worker")

    async def stop(self) -> None:
        """Stop the background loop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait until a kicked run has finished and its notices are out (for tests and the
        demo)."""
        await asyncio.wait_for(self._idle.wait(), timeout)
        if self.outbox is not None and self.outbox.running:
            await self.outbox.idle(timeout)

    async def run_once(self) -> None:
        """Process pending events, then wake the outbox for the notices they queued."""
        while await process_pending(self.billing):
            pass
        if self.outbox is not None:
            self.outbox.kick()

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                await self.run_once()
            except Exception:
                log.exception("worker run failed")
            if not self._wake.is_set():
                self._idle.set()
