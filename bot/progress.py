"""The broadcast's progress message: edited in place while the broadcast runs, last into its
report (SPEC §6c).

    Send now → the pressed preview becomes the progress message (handlers.flows.broadcast)
    → every `every` seconds (the scheduler's broadcasts job, on the leader): the counts
      rendered for the admin; an edit only when the text changed
    → all settled (or canceled with nothing in the air): the last edit is the report

Telegram lets a bot edit a message about once every few seconds before it answers 429, and
refuses an edit that changes nothing ("400 Bad Request: message is not modified"): each
broadcast's last shown text is kept, and a message is edited at most once per `every`
seconds. A broadcast watched on a channel that cannot edit, or with no message to edit,
gets its report as a notice of its own (billing.broadcasts.queue_reports).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from billing import broadcasts
from billing.broadcasts import Progress
from billing.services import Billing
from bot.channels import Editing, MessageGone, NotModified
from bot.outbox import Rejected, RetryLater, Unreachable
from handlers.context import Actor
from handlers.portal import Portal
from handlers.replies import Reply

log = logging.getLogger(__name__)
EVERY = 4.0  # seconds between two edits of one progress message (Telegram: a few seconds)
KIND = "broadcast_progress"


@dataclass(frozen=True)
class Watched:
    """A broadcast whose admin watches a progress message, with its counts now."""

    channel: str
    actor: Actor
    message_id: str
    progress: Progress
    first: Progress  # the counts the progress message was made with


def _first(p: Progress, *, scheduled: bool) -> Progress:
    status = "done" if not p.recipients else "scheduled" if scheduled else "sending"
    return Progress(id=p.id, status=status,
                    recipients=p.recipients, pending=p.recipients, delivered=0, blocked=0,
                    failed=0, skipped=0, send_at=p.send_at)


def _shown(reply: Reply) -> tuple[object, ...]:
    return reply.title, reply.text, reply.html, reply.buttons


class ProgressEditor:
    """Keeps each admin's progress message current, within Telegram's edit limits."""

    def __init__(self, billing: Billing, portal: Portal, *, every: float = EVERY) -> None:
        self.billing = billing
        self.portal = portal
        self.every = every
        self.channels: dict[str, Editing] = {}
        self._shown: dict[int, tuple[object, ...]] = {}  # broadcast → what its message shows
        self._edited: dict[int, float] = {}  # broadcast → loop time of our last edit
        self.edits = 0  # edits sent, for tests and /metrics

    async def tick(self) -> int:
        """Edit the progress messages whose counts changed; queue the reports of broadcasts
        watched elsewhere; return how many messages were edited."""
        edited = 0
        for watched in await self._watched():
            channel = self.channels.get(watched.channel)
            if channel is None:
                continue
            try:
                edited += await self._show(channel, watched)
            except Exception:  # a network error, the database away: this one, next round
                log.exception("progress of broadcast %s not shown", watched.progress.id)
        async with self.billing.db.session() as session:
            await broadcasts.queue_reports(session, edited=tuple(self.channels))
        return edited

    async def _watched(self) -> list[Watched]:
        found = []
        async with self.billing.db.session() as session:
            for row in await broadcasts.watched(session):
                if row.progress_channel not in self.channels or not row.progress_message:
                    continue
                counts = await broadcasts.progress(session, row.id)
                if counts is None or row.progress_chat is None:
                    continue
                user_id = (row.created_by or "").partition(":")[2] or row.progress_chat
                actor = Actor(channel=row.progress_channel, user_id=user_id,
                              chat_id=row.progress_chat, private=True)
                first = _first(counts, scheduled=row.send_at > row.created_at)
                found.append(Watched(row.progress_channel, actor, row.progress_message, counts,
                                     first))
        return found

    async def _render(self, watched: Watched, counts: Progress) -> Reply:
        return await self.portal.notice(actor=watched.actor, kind=KIND, params=counts.params())

    async def _show(self, channel: Editing, watched: Watched) -> bool:
        """Edit one progress message if its text changed; return whether it was edited."""
        ident, counts = watched.progress.id, watched.progress
        reply = await self._render(watched, counts)
        if ident not in self._shown:  # first sight (or a restart): as the message was made
            self._shown[ident] = _shown(await self._render(watched, watched.first))
        now = asyncio.get_running_loop().time()
        if _shown(reply) == self._shown[ident]:
            if counts.finished:
                await self._reported(ident)
            return False
        if now - self._edited.get(ident, float("-inf")) < self.every * 0.8:  # a tick's jitter
            return False  # edited moments ago: the next round
        try:
            await channel.edit(watched.actor.chat_id, watched.message_id, reply)
        except NotModified:  # it shows this already (pressed Refresh, a restart)
            pass
        except MessageGone:  # the admin deleted it: a new one takes its place
            await self._replace(channel, watched, reply)
        except RetryLater as error:
            log.info("progress of broadcast %s: edit deferred (%s)", ident, error)
            return False
        except (Unreachable, Rejected) as error:
            log.warning("progress of broadcast %s cannot be shown: %s", ident, error)
            await self._reported(ident)  # nobody to show it to: give up on this message
            return False
        # Timed from the answer: the next edit reaches Telegram at least `every` * 0.8 after
        # this one, however long this request took.
        self._shown[ident] = _shown(reply)
        self._edited[ident] = asyncio.get_running_loop().time()
        self.edits += 1
        if counts.finished:
            await self._reported(ident)
        return True

    async def _replace(self, channel: Editing, watched: Watched, reply: Reply) -> None:
        message_id = await channel.send(watched.actor.chat_id, reply)
        async with self.billing.db.session() as session:
            await broadcasts.watch(session, watched.progress.id, channel=watched.channel,
                                   chat_id=watched.actor.chat_id, message_id=message_id or "")

    async def _reported(self, ident: int) -> None:
        async with self.billing.db.session() as session:
            await broadcasts.reported(session, ident)
        self._shown.pop(ident, None)
        self._edited.pop(ident, None)
