"""The outbox sender: claims due notices and pushes them into chats within Telegram's limits.

    claim (held, still pending) → pace → render → send: `issue` marks it `sending` as the
    request leaves → settle (sent | pending again for a retry | failed | unreachable)

A notice is `sending` only while its request is in the air (SPEC §7). A claim only holds
notices (billing.deliveries): a kill while they wait for their turn leaves them pending for
the next sender. The channel calls the send's `issue` right before its request leaves, after
every wait of its own (PTB's rate limiter, bot.telegram_limiter), and only then is the notice
marked `sending` (the notices leaving together in one write). A 429, 5xx or network error
comes back here at once and the notice waits its retry as pending, durably; no retry hides
inside the channel. A kill while requests are in the air leaves just those in doubt: on
recovery a payment problem is sent again and anything else becomes `unknown` (counted in
/metrics, listed by `portier notices --unknown`): never silently sent twice or lost.

Pacing is the outbox's own, not PTB's AIORateLimiter: it spaces notices exactly at
PORTIER_SEND_RATE for all chats together (aiolimiter lets a whole second's worth out in one
burst), keeps at most one message a second per chat (which PTB leaves to us) and 20 a minute
per group, and it claims only what it is about to send. The messages still pass through the
application's rate limiter, which therefore counts replies and notices against one global
budget. A 429 pauses every notice for its retry_after: those claimed go back unsent. 403
marks the chat unreachable; 5xx and network errors retry with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Collection
from datetime import datetime, timedelta
from typing import Protocol

from billing.db import Database
from billing.deliveries import (
    Claimed,
    Outcome,
    begin,
    claim,
    mark_unreachable,
    recover,
    release,
    release_all,
    settle,
)
from billing.models import utcnow
from billing.services import Billing
from bot.pacing import Pace
from handlers.context import Actor
from handlers.portal import Portal
from handlers.replies import Reply

log = logging.getLogger(__name__)
Issue = Callable[[], Awaitable[None]]
MAX_ATTEMPTS = 8
BACKOFF_BASE, BACKOFF_CAP = 2.0, 600.0  # seconds
FLUSH_EVERY = 0.2  # outcomes are recorded in batches this often
LOOKAHEAD = 0.5  # a claim takes what the global rate lets out in this many seconds
# Sends in flight at once: enough to keep the rate with answers taking up to RTT seconds
# (marking `sending` included), few enough that the HTTP client's pool stays small (httpcore
# scans every pooled connection on each request, so an unbounded pool melts down once answers
# slow).
RTT = 0.05
MIN_IN_FLIGHT = 4
# A request is in the air 16 s at most (bot.telegram_http's timeouts): a notice `sending` for
# longer was left by a sender that stopped.
LEASE = 30.0


class Sender(Protocol):
    """A channel's way to send one notice; it awaits `issue()` right before the request
    leaves (after any wait of its own), and sends nothing if that raises."""

    def __call__(self, chat_id: str, reply: Reply, *, issue: Issue) -> Awaitable[object]:
        """Send the reply into the chat."""
        ...


class Unreachable(Exception):
    """The chat cannot receive messages any more (the user blocked the bot)."""


class RetryLater(Exception):
    """The channel asked us to wait (Telegram's 429 with retry_after)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds:g} s")
        self.seconds = seconds


class Rejected(Exception):
    """The channel refused this message for good (a 400): sending it again cannot help."""


class HoldLost(Exception):
    """Another sender holds the notice now (this one stalled past its hold): not sent."""


class NotBegun(Exception):
    """The notice could not be marked `sending` (the database was away): not sent."""


def backoff(attempts: int) -> float:
    """Return the wait before the next try after `attempts` failed ones (with jitter)."""
    base = min(BACKOFF_BASE * 2.0 ** max(attempts - 1, 0), BACKOFF_CAP)
    return float(base * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not secrets


class Begins:
    """Marks notices `sending` as their requests leave; those asking while a write is under
    way go together in the next one (a group commit: a write per notice, each waiting for the
    last, would cap the send rate at the database's commits a second)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._queue: list[tuple[Claimed, asyncio.Future[datetime | None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def __call__(self, notice: Claimed) -> datetime | None:
        """Mark one notice `sending`; return its new token, or None when it was no longer
        this sender's to send."""
        future: asyncio.Future[datetime | None] = asyncio.get_running_loop().create_future()
        self._queue.append((notice, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="portier-outbox-begin")
        return await future

    async def _write(self) -> None:
        while self._queue:
            batch = [(n, f) for n, f in self._queue if not f.cancelled()]
            self._queue = []
            if not batch:
                continue
            try:
                async with self.db.session() as session:
                    now, ours = await begin(session, [(n.id, n.claimed_at) for n, _ in batch])
            except Exception as error:  # noqa: BLE001 - handed to each send, which stops
                for _, future in batch:
                    if not future.done():
                        future.set_exception(NotBegun(type(error).__name__))
                continue
            for notice, future in batch:
                if not future.done():
                    future.set_result(now if notice.id in ours else None)


class Outbox:
    """Delivers due notices through each channel's sender, exactly once or visibly not."""

    def __init__(self, billing: Billing, portal: Portal, *, rate: float, lease: float = LEASE,
                 poll: float = 1.0, group_per_minute: int = 20) -> None:
        self.billing = billing
        self.portal = portal
        self.senders: dict[str, Sender] = {}
        self.pace = Pace(rate, group_per_minute=group_per_minute)
        self.lease = lease  # a send begun longer ago than this was left by a dead sender
        self.poll = poll
        self.outcomes: Counter[str] = Counter()  # recorded outcomes, for /metrics
        self._batch = max(1, math.ceil(rate * LOOKAHEAD))
        self._begins = Begins(billing.db)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._sends: dict[int, asyncio.Task[None]] = {}
        self._held: dict[int, Claimed] = {}  # handed to a send task, no outcome yet
        self._started: set[int] = set()  # its request is leaving or in the air
        self._begun: dict[int, datetime] = {}  # in the air: its token since
        self._outcomes: list[Outcome] = []
        self._unsent: list[Claimed] = []  # to give back: held, never sent
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
        """Recover notices a dead sender left mid-send, free every hold, then start sending."""
        if self.running:
            return
        await self.recover(0.0 if recover_all else self.lease)
        async with self.billing.db.session() as session:
            await release_all(session)
        self._graceful = False
        self._in_flight = asyncio.Semaphore(self._max_in_flight)
        self._task = asyncio.create_task(self._loop(), name="portier-outbox")
        self._flusher = asyncio.create_task(self._flush_loop(), name="portier-outbox-flush")
        self.kick()

    async def stop(self, *, grace: float = 5.0) -> None:
        """Stop claiming; let sends already in the air finish (up to `grace`)."""
        self._graceful, self._grace = True, grace
        for task in (self._task, self._flusher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._flusher = None
        with contextlib.suppress(Exception):  # what a flush cut short put back, if any
            await self._flush()

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait until nothing due is left to send (for tests and the demo)."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def recover(self, older_than: float | None = None) -> int:
        """Settle notices left `sending` longer than the lease: payment problems are sent
        again, the rest become `unknown`; return how many were left."""
        cutoff = utcnow() - timedelta(seconds=self.lease if older_than is None else older_than)
        async with self.billing.db.session() as session:
            found = await recover(session, claimed_before=cutoff)
        if found.total:
            log.warning("%d notices were left mid-send by a stopped sender: %d payment "
                        "notices will be sent again, %d marked unknown", found.total,
                        found.resent, found.unknown)
            self.outcomes["unknown"] += found.unknown
            self.outcomes["resent"] += found.resent
        return found.total

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

    def _paused(self) -> float:
        return self.pace.paused_until - asyncio.get_running_loop().time()

    async def _step(self) -> None:
        """Claim a batch and hand each notice to a send task at its paced moment."""
        loop = asyncio.get_running_loop()
        self._wake.clear()
        if self._paused() > 0:  # Telegram asked us to wait: claim nothing before then
            await asyncio.sleep(self._paused())
            return
        batch = await self._claim()
        if not batch:
            await self._rest()
            return
        self._idle.clear()  # a notice fell due since the last rest (no kick announced it)
        waiting = {n.id: n for n in batch}
        try:
            for notice in batch:
                if notice.id in self._sends:
                    continue  # its hold lapsed while its send waited: released below, and
                    # the waiting send, its hold gone, sends nothing; the next claim takes it
                if not self.pace.ready(notice.channel, notice.chat_id, loop.time()):
                    continue  # its chat got a message meanwhile: released below
                delay = self.pace.slot(loop.time())
                if delay > 0:
                    await asyncio.sleep(delay)
                if self._paused() > 0:
                    break  # a 429 meanwhile: the rest wait as pending (released below)
                await self._in_flight.acquire()
                self.pace.sent(notice.channel, notice.chat_id, loop.time())
                self._held[notice.id] = waiting.pop(notice.id)
                self._sends[notice.id] = asyncio.create_task(self._send(notice))
        finally:
            await asyncio.shield(self._release(waiting.values()))

    async def _claim(self) -> list[Claimed]:
        skip = self.pace.busy(asyncio.get_running_loop().time()) | {
            chat for _, chat in self._blocked}
        claiming = asyncio.ensure_future(self._claim_in(skip))
        try:
            return await asyncio.shield(claiming)
        except asyncio.CancelledError:  # killed mid-claim: what it claimed goes back
            with contextlib.suppress(Exception):
                await self._release(await claiming)
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

    async def _release(self, notices: Collection[Claimed]) -> None:
        if notices:
            async with self.billing.db.session() as session:
                await release(session, [(n.id, n.claimed_at) for n in notices])

    async def _wind_down(self) -> None:
        """Give back what was claimed but not sent; let what is in the air finish (when
        stopping gracefully) and record it; what stays in the air is left `sending`."""
        for notice_id, task in self._sends.items():
            if notice_id not in self._started:
                task.cancel()
        running = [t for i, t in self._sends.items() if i in self._started]
        if running and self._graceful:
            await asyncio.wait(running, timeout=self._grace)
        for task in self._sends.values():
            task.cancel()
        await asyncio.gather(*self._sends.values(), return_exceptions=True)
        await self._flush()
        # Held with no outcome: put back unless marked `sending` (in doubt, recovered later).
        await self._release(list(self._held.values()))
        self._sends.clear()
        self._held.clear()
        self._started.clear()
        self._begun.clear()

    # -- one send --------------------------------------------------------------------------

    async def _send(self, notice: Claimed) -> None:
        try:
            outcome = await self._deliver(notice)
        finally:
            self._sends.pop(notice.id, None)
            self._in_flight.release()
        self._held.pop(notice.id, None)
        self._started.discard(notice.id)
        self._begun.pop(notice.id, None)
        if outcome is not None:
            self._outcomes.append(outcome)

    async def _issue(self, notice: Claimed) -> None:
        """Mark the notice `sending`: its request leaves now (the sender calls this)."""
        self._started.add(notice.id)  # from here on a kill may leave it in doubt
        token = await self._begins(notice)
        if token is None:
            raise HoldLost(f"notice {notice.id} is held by another sender")
        self._begun[notice.id] = token

    async def _deliver(self, notice: Claimed) -> Outcome | None:
        sender = self.senders.get(notice.channel)
        if sender is None:
            return self._outcome(notice, "failed", f"the {notice.channel} channel is off")
        try:
            reply = await self.render(notice)
        except KeyError:
            return self._outcome(notice, "failed", f"unknown notice kind {notice.kind!r}")
        try:
            await sender(notice.chat_id, reply, issue=functools.partial(self._issue, notice))
        except HoldLost:
            log.warning("notice %s was claimed again by another sender: not sent", notice.id)
            return None
        except NotBegun as error:
            log.warning("notice %s not sent: could not mark it sending (%s)", notice.id, error)
            self._unsent.append(notice)
            return None
        except Unreachable as error:
            self._blocked[(notice.channel, notice.chat_id)] = str(error) or "blocked"
            return self._outcome(notice, "unreachable", str(error)[:500] or "blocked")
        except RetryLater as error:
            self.pace.pause(asyncio.get_running_loop().time() + error.seconds)
            return self._retry(notice, f"429 retry_after={error.seconds:g}", error.seconds)
        except Rejected as error:
            return self._outcome(notice, "failed", str(error)[:500])
        except Exception as error:  # noqa: BLE001 - 5xx, network: recorded and retried
            log.warning("notice %s not sent: %s", notice.id, type(error).__name__)
            if notice.attempts + 1 >= MAX_ATTEMPTS:
                return self._outcome(notice, "failed", type(error).__name__)
            return self._retry(notice, type(error).__name__, backoff(notice.attempts + 1))
        return self._outcome(notice, "sent")

    async def render(self, notice: Claimed) -> Reply:
        """Render a notice in its recipient's language and time zone."""
        actor = Actor(channel=notice.channel, user_id=notice.user_id, chat_id=notice.chat_id,
                      private=True)
        return self.portal.render_for(actor=actor, kind=notice.kind, params=notice.params,
                                      locale=notice.locale, zone=notice.timezone)

    def _outcome(self, notice: Claimed, status: str, error: str | None = None, *,
                 retry_in: float | None = None) -> Outcome:
        token = self._begun.get(notice.id, notice.claimed_at)
        retry_at = None if retry_in is None else utcnow() + timedelta(seconds=retry_in)
        return Outcome(notice.id, token, status, error, retry_at=retry_at)

    def _retry(self, notice: Claimed, error: str, seconds: float) -> Outcome:
        return self._outcome(notice, "pending", error, retry_in=seconds)

    # -- recording -------------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            # Shielded: a stop arriving mid-flush would roll back outcomes already taken
            # from the list, leaving those notices `sending` though their answers came.
            flushing = asyncio.ensure_future(self._flush())
            try:
                await asyncio.shield(flushing)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await flushing
                raise
            except Exception:
                log.exception("recording notice outcomes failed; will try again")

    async def _flush(self) -> None:
        outcomes, self._outcomes = self._outcomes, []
        unsent, self._unsent = self._unsent, []
        blocked = dict(self._blocked)
        if not outcomes and not unsent and not blocked:
            return
        self._recording += 1
        try:
            async with self.billing.db.session() as session:
                await settle(session, outcomes)
                await release(session, [(n.id, n.claimed_at) for n in unsent])
                for (channel, chat_id), reason in blocked.items():
                    await mark_unreachable(session, channel=channel, chat_id=chat_id,
                                           reason=reason)
        except BaseException:
            self._outcomes[:0] = outcomes  # keep them for the next flush
            self._unsent[:0] = unsent
            raise
        finally:
            self._recording -= 1
        for key in blocked:
            self._blocked.pop(key, None)
        self.outcomes.update("retried" if o.status == "pending" else o.status
                             for o in outcomes)
        if unsent or any(o.status == "pending" for o in outcomes):
            self.kick()
        else:
            self._wake.set()  # let a resting loop see at once whether it is idle now
