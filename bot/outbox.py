"""The outbox sender: claims due notices and pushes them into chats within Telegram's limits.

    claim (pending → sending) → pace → render → send → settle (sent | retry | failed |
    unreachable); a kill between claim and send puts the claimed notices back to pending;
    a notice handed to the channel whose answer never came stays `sending` and becomes
    `unknown` when recovered: never silently sent twice, never silently lost.

Pacing is the outbox's own, not PTB's AIORateLimiter: it spaces notices exactly at
PORTIER_SEND_RATE for all chats together (aiolimiter lets a whole second's worth out in one
burst), keeps at most one message a second per chat (which PTB leaves to us) and 20 a minute
per group, and it claims only what it is about to send, so a notice waiting for its turn
stays `pending` in the database rather than `sending` in memory. The messages still pass
through the application's AIORateLimiter, which therefore counts replies and notices against
one global budget and pauses the whole bot on a 429; a 429 that outlasts its retries comes
back here as RetryLater: the notice waits `retry_after` (durably, as pending) and so does
every send. 403 marks the chat unreachable; 5xx and network errors retry with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta

from billing.deliveries import Claimed, Outcome, claim, mark_unreachable, recover, release, settle
from billing.models import utcnow
from billing.services import Billing
from bot.pacing import Pace
from handlers.context import Actor
from handlers.notices import render_for
from handlers.portal import Portal
from handlers.replies import Reply

log = logging.getLogger(__name__)
Sender = Callable[[str, Reply], Awaitable[None]]
MAX_ATTEMPTS = 8
BACKOFF_BASE, BACKOFF_CAP = 2.0, 600.0  # seconds
FLUSH_EVERY = 0.2  # outcomes are recorded in batches this often
LOOKAHEAD = 0.5  # a claim takes what the global rate lets out in this many seconds
# Sends in flight at once: enough to keep the rate with answers taking up to RTT seconds,
# few enough that the HTTP client's pool stays small (httpcore scans every pooled connection
# on each request, so an unbounded pool melts down once answers slow).
RTT = 0.05
MIN_IN_FLIGHT = 4


class Unreachable(Exception):
    """The chat cannot receive messages any more (the user blocked the bot)."""


class RetryLater(Exception):
    """The channel asked us to wait (Telegram's 429 with retry_after)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds:g} s")
        self.seconds = seconds


class Rejected(Exception):
    """The channel refused this message for good (a 400): sending it again cannot help."""


def backoff(attempts: int) -> float:
    """Return the wait before the next try after `attempts` failed ones (with jitter)."""
    base = min(BACKOFF_BASE * 2.0 ** max(attempts - 1, 0), BACKOFF_CAP)
    return float(base * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not secrets


class Outbox:
    """Delivers due notices through each channel's sender, exactly once or visibly not."""

    def __init__(self, billing: Billing, portal: Portal, *, rate: float, lease: float = 60.0,
                 poll: float = 1.0, group_per_minute: int = 20) -> None:
        self.billing = billing
        self.portal = portal
        self.senders: dict[str, Sender] = {}
        self.pace = Pace(rate, group_per_minute=group_per_minute)
        self.lease = lease  # a claim older than this belongs to a dead sender
        self.poll = poll
        self._batch = max(1, math.ceil(rate * LOOKAHEAD))
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._sends: dict[int, asyncio.Task[None]] = {}
        self._started: set[int] = set()  # handed to the channel, answer not yet in
        self._outcomes: list[Outcome] = []
        self._recording = 0  # flushes under way: their outcomes are in neither list nor DB
        self._blocked: dict[tuple[str, str], str] = {}
        self._graceful, self._grace = False, 5.0
        self._max_in_flight = max(MIN_IN_FLIGHT, math.ceil(rate * RTT))
        self._in_flight = asyncio.Semaphore(self._max_in_flight)

    @property
    def running(self) -> bool:
        """Return whether the sender loop is running."""
        return self._task is not None and not self._task.done()

    def kick(self) -> None:
        """Look for due notices now."""
        self._idle.clear()
        self._wake.set()

    async def start(self, *, recover_all: bool = False) -> None:
        """Recover notices a dead sender left mid-send, then start sending."""
        if self.running:
            return
        await self.recover(0.0 if recover_all else self.lease)
        self._graceful = False
        self._in_flight = asyncio.Semaphore(self._max_in_flight)
        self._task = asyncio.create_task(self._loop(), name="portier-outbox")
        self._flusher = asyncio.create_task(self._flush_loop(), name="portier-outbox-flush")
        self.kick()

    async def stop(self, *, grace: float = 5.0) -> None:
        """Stop claiming; let sends already handed to a channel finish (up to `grace`)."""
        self._graceful, self._grace = True, grace
        for task in (self._task, self._flusher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._flusher = None

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait until nothing due is left to send (for tests and the demo)."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def recover(self, older_than: float | None = None) -> int:
        """Mark notices left `sending` longer than the lease as `unknown`; return how many."""
        cutoff = utcnow() - timedelta(seconds=self.lease if older_than is None else older_than)
        async with self.billing.db.session() as session:
            found = await recover(session, claimed_before=cutoff)
        if found:
            log.warning("%d notices were left mid-send by a stopped sender: marked unknown",
                        found)
        return found

    # -- the loop ------------------------------------------------------------------------

    async def _loop(self) -> None:
        try:
            while True:
                try:
                    await self._step()
                except Exception:  # the database was busy or away: try again shortly
                    log.exception("the outbox sender failed a round; retrying")
                    await asyncio.sleep(self.poll)
        except asyncio.CancelledError:
            await asyncio.shield(self._wind_down())
            raise

    async def _step(self) -> None:
        """Claim a batch and hand each notice to a send task at its paced moment."""
        loop = asyncio.get_running_loop()
        self._wake.clear()
        batch = await self._claim()
        if not batch:
            await self._rest()
            return
        self._idle.clear()  # a notice fell due since the last rest (no kick announced it)
        waiting = {n.id for n in batch}
        try:
            for notice in batch:
                if not self.pace.ready(notice.chat_id, loop.time()):
                    continue  # its chat got a message meanwhile: released below
                delay = self.pace.slot(loop.time())
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._in_flight.acquire()
                self.pace.sent(notice.chat_id, loop.time())
                waiting.discard(notice.id)
                self._sends[notice.id] = asyncio.create_task(self._send(notice))
        finally:
            await asyncio.shield(self._release(waiting))

    async def _claim(self) -> list[Claimed]:
        skip = self.pace.busy(asyncio.get_running_loop().time()) | {
            chat for _, chat in self._blocked}
        claiming = asyncio.ensure_future(self._claim_in(skip))
        try:
            return await asyncio.shield(claiming)
        except asyncio.CancelledError:  # killed mid-claim: what it claimed goes back
            with contextlib.suppress(Exception):
                await self._release({n.id for n in await claiming})
            raise

    async def _claim_in(self, skip: set[str]) -> list[Claimed]:
        async with self.billing.db.session() as session:
            return await claim(session, limit=self._batch, skip_chats=skip)

    async def _rest(self) -> None:
        """Wait for a kick, a chat to become free, or the poll interval."""
        busy = self.pace.busy(asyncio.get_running_loop().time())
        if not self._sends and not self._outcomes and not self._recording and not busy:
            self._idle.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), min(self.poll, 0.2) if busy else self.poll)

    async def _release(self, ids: set[int]) -> None:
        if ids:
            async with self.billing.db.session() as session:
                await release(session, ids)

    async def _wind_down(self) -> None:
        """Put back what was claimed but not handed over; settle or abandon the rest."""
        not_started = [i for i in self._sends if i not in self._started]
        for notice_id in not_started:
            self._sends[notice_id].cancel()
        running = [t for i, t in self._sends.items() if i in self._started]
        if running and self._graceful:
            await asyncio.wait(running, timeout=self._grace)
        for task in self._sends.values():
            task.cancel()
        await asyncio.gather(*self._sends.values(), return_exceptions=True)
        # Left `sending` (handed to the channel, no answer): recovered as unknown later.
        await self._release(set(not_started))
        self._sends.clear()
        self._started.clear()
        await self._flush()

    # -- one send --------------------------------------------------------------------------

    async def _send(self, notice: Claimed) -> None:
        try:
            outcome = await self._deliver(notice)
        finally:
            self._sends.pop(notice.id, None)
            self._in_flight.release()
        self._started.discard(notice.id)
        self._outcomes.append(outcome)

    async def _deliver(self, notice: Claimed) -> Outcome:
        sender = self.senders.get(notice.channel)
        if sender is None:
            return Outcome(notice.id, "failed", f"the {notice.channel} channel is off")
        try:
            reply = await self.render(notice)
        except KeyError:
            return Outcome(notice.id, "failed", f"unknown notice kind {notice.kind!r}")
        self._started.add(notice.id)  # from here on a kill leaves the outcome unknown
        try:
            await sender(notice.chat_id, reply)
        except Unreachable as error:
            self._blocked[(notice.channel, notice.chat_id)] = str(error) or "blocked"
            return Outcome(notice.id, "unreachable", str(error)[:500] or "blocked")
        except RetryLater as error:
            self.pace.pause(asyncio.get_running_loop().time() + error.seconds)
            return self._retry(notice, f"429 retry_after={error.seconds:g}", error.seconds)
        except Rejected as error:
            return Outcome(notice.id, "failed", str(error)[:500])
        except Exception as error:  # noqa: BLE001 - 5xx, network: recorded and retried
            log.warning("notice %s not sent: %s", notice.id, type(error).__name__)
            if notice.attempts + 1 >= MAX_ATTEMPTS:
                return Outcome(notice.id, "failed", type(error).__name__)
            return self._retry(notice, type(error).__name__, backoff(notice.attempts + 1))
        return Outcome(notice.id, "sent")

    async def render(self, notice: Claimed) -> Reply:
        """Render a notice in its recipient's language and time zone."""
        actor = Actor(channel=notice.channel, user_id=notice.user_id, chat_id=notice.chat_id,
                      private=True)
        return render_for(self.portal.billing, actor=actor, kind=notice.kind,
                          params=notice.params, locale=notice.locale, zone=notice.timezone,
                          default_locale=self.portal.default_locale,
                          bot_username=self.portal.bot_username)

    def _retry(self, notice: Claimed, error: str, seconds: float) -> Outcome:
        return Outcome(notice.id, "pending", error,
                       retry_at=utcnow() + timedelta(seconds=seconds))

    # -- recording -------------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            try:
                await self._flush()
            except Exception:
                log.exception("recording notice outcomes failed; will try again")

    async def _flush(self) -> None:
        outcomes, self._outcomes = self._outcomes, []
        blocked = dict(self._blocked)
        if not outcomes and not blocked:
            return
        self._recording += 1
        try:
            async with self.billing.db.session() as session:
                await settle(session, outcomes)
                for (channel, chat_id), reason in blocked.items():
                    await mark_unreachable(session, channel=channel, chat_id=chat_id,
                                           reason=reason)
        except BaseException:
            self._outcomes[:0] = outcomes  # keep them for the next flush
            raise
        finally:
            self._recording -= 1
        for key in blocked:
            self._blocked.pop(key, None)
        if any(o.status == "pending" for o in outcomes):
            self.kick()
        else:
            self._wake.set()  # let a resting loop see at once whether it is idle now
