"""Background work: process stored Stripe events, then deliver the notices they queued."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from billing import events as _event_handlers  # noqa: F401 - registers the event handlers
from billing.notices import due, mark
from billing.services import Billing
from billing.webhooks import process_pending
from handlers.context import Actor
from handlers.portal import Portal
from handlers.replies import Reply

log = logging.getLogger(__name__)
Sender = Callable[[str, Reply], Awaitable[None]]


class Unreachable(Exception):
    """The chat cannot receive messages any more (the user blocked the bot)."""


class Worker:
    """Processes events and sends notices whenever kicked, and every few seconds anyway."""

    def __init__(self, billing: Billing, portal: Portal, *, interval: float = 5.0) -> None:
        self.billing = billing
        self.portal = portal
        self.interval = interval
        self.senders: dict[str, Sender] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()

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
        """Wait until a kicked run has finished (for tests and the demo)."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def run_once(self) -> None:
        """Process pending events, then send due notices."""
        while await process_pending(self.billing):
            pass
        await self.send_due()

    async def send_due(self) -> None:
        """Deliver every due notice through its channel's sender."""
        async with self.billing.db.session() as session:
            notices = [(n.id, n.channel, n.user_id, n.chat_id, n.kind, dict(n.params))
                       for n in await due(session)]
        for notice_id, channel, user_id, chat_id, kind, params in notices:
            sender = self.senders.get(channel)
            if sender is None:
                continue
            actor = Actor(channel=channel, user_id=user_id, chat_id=chat_id, private=True)
            status, error = "sent", None
            try:
                await sender(chat_id, await self.portal.notice(actor=actor, kind=kind,
                                                               params=params))
            except Unreachable:
                status = "unreachable"
            except Exception as exc:  # noqa: BLE001 - recorded; retried by a later issue's outbox
                log.warning("notice %s not sent: %s", notice_id, type(exc).__name__)
                status, error = "failed", type(exc).__name__
            async with self.billing.db.session() as session:
                await mark(session, notice_id, status=status, error=error)

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
