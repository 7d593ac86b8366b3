"""Broadcasts: one message from a business admin to a segment of the linked customers.

    create → one outbox notice per recipient (kind "broadcast", pending, due at `send_at`)
    → the outbox sends them (pacing, 429, 403 → unreachable, crash recovery are its own)
    → report: delivered (sent), blocked (unreachable), failed (failed, unknown),
      skipped (canceled before they went out)

A broadcast is a stored row; its recipients are chosen from the local mirror and the chat
links when it is created (a scheduled one too: `send_at` only delays its notices). Each
recipient's copy is a notice under `broadcast:<id>@<channel>:<user>`, so a retried create, a
crash or a second sender never sends it twice. Cancel turns the notices still pending into
`canceled`: a notice already held by a sender is `pending` until its request leaves
(billing.deliveries), and `begin` sends only pending ones, so none leaves after the cancel.
The outbox's claim takes every other due notice before broadcast ones (payment problems
first).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from billing.broadcast_text import BroadcastError, check_button_url, check_html
from billing.mirror_models import MirrorSubscription
from billing.models import Base, ChatLink, Notice, Preference, UTCDateTime, utcnow
from billing.notices import add_many, enqueue

KIND = "broadcast"
KINDS = ("offer", "service")
STATUSES = ("active", "trialing", "past_due", "canceled")


class Broadcast(Base):
    """A message to a segment of the linked customers, sent as one notice per recipient."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)  # Telegram HTML, validated
    kind: Mapped[str] = mapped_column(String(16))  # offer | service
    segment: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    button_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    button_plan: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="sending")  # | canceled
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str | None] = mapped_column(String(96), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    send_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Where the admin watches it: the progress message to edit (Telegram), and the report.
    progress_channel: Mapped[str | None] = mapped_column(String(16), nullable=True)
    progress_chat: Mapped[str | None] = mapped_column(String(64), nullable=True)
    progress_message: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


@dataclass(frozen=True)
class Segment:
    """Whom a broadcast reaches; None means any. `prices` are the chosen plan's price ids."""

    plan: str | None = None
    prices: frozenset[str] = field(default_factory=frozenset)
    status: str | None = None
    language: str | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            raise BroadcastError(f"unknown status {self.status!r}: one of "
                                 + ", ".join(STATUSES))

    def as_dict(self) -> dict[str, Any]:
        """Return the segment as stored with the broadcast."""
        return {"plan": self.plan, "status": self.status, "language": self.language}


@dataclass(frozen=True)
class Target:
    """One recipient: a linked chat, and whether its customer subscribes now."""

    channel: str
    user_id: str
    chat_id: str
    subscribed: bool


_LIVE = ("active", "trialing", "past_due")


async def targets(session: AsyncSession, segment: Segment, *, kind: str,
                  default_locale: str = "en") -> list[Target]:
    """Return the linked chats the segment and kind reach, once each (a customer's several
    subscriptions do not repeat a chat): an offer only those who opted in to offers."""
    if kind not in KINDS:
        raise BroadcastError(f"unknown kind {kind!r}: offer or service")
    query = (select(ChatLink.channel, ChatLink.user_id, ChatLink.chat_id, ChatLink.customer_id)
             .outerjoin(Preference, (Preference.channel == ChatLink.channel)
                        & (Preference.user_id == ChatLink.user_id)))
    if kind == "offer":
        query = query.where(Preference.offers.is_(True))
    if segment.language is not None:
        locale = func.coalesce(Preference.locale, default_locale)
        query = query.where(locale == segment.language)
    subs = select(MirrorSubscription.customer_id)
    if segment.plan is not None:
        subs = subs.where(MirrorSubscription.price_id.in_(sorted(segment.prices)))
    if segment.status is not None:
        subs = subs.where(MirrorSubscription.status == segment.status)
    if segment.plan is not None or segment.status is not None:
        query = query.where(ChatLink.customer_id.in_(subs))
    rows = list(await session.execute(query.order_by(ChatLink.id)))
    live = set(await session.scalars(
        select(MirrorSubscription.customer_id).where(MirrorSubscription.status.in_(_LIVE),
                                                     MirrorSubscription.customer_id.in_(
                                                         {r.customer_id for r in rows}))
    )) if rows else set()
    seen: set[tuple[str, str]] = set()
    found = []
    for channel, user_id, chat_id, customer in rows:
        if (channel, user_id) not in seen:
            seen.add((channel, user_id))
            found.append(Target(channel, user_id, chat_id, customer in live))
    return found


def notice_key(broadcast_id: int, channel: str, user_id: str) -> str:
    """Return the dedupe key of a recipient's copy of a broadcast."""
    return f"{KIND}:{broadcast_id}@{channel}:{user_id}"


def _prefix(broadcast_id: int) -> str:
    return f"{KIND}:{broadcast_id}@"


async def notices_added(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """Queue broadcast notices (dicts of Notice columns); return how many were new."""
    return await add_many(session, rows)


def notice_params(broadcast: Broadcast, subscribed: bool) -> dict[str, Any]:
    """Return what rendering one recipient's copy needs."""
    return {"broadcast": broadcast.id, "text": broadcast.text, "url": broadcast.button_url,
            "plan": broadcast.button_plan, "subscribed": subscribed}


async def create(session: AsyncSession, *, text: str, kind: str, segment: Segment,
                 button_url: str | None = None, button_plan: str | None = None,
                 send_at: datetime | None = None, created_by: str | None = None,
                 default_locale: str = "en") -> Broadcast:
    """Validate and store a broadcast and queue its notices, in the caller's transaction."""
    check_html(text)
    if button_url is not None and button_plan is not None:
        raise BroadcastError("a button opens a link or a plan, not both")
    if button_url is not None:
        button_url = check_button_url(button_url)
    chosen = await targets(session, segment, kind=kind, default_locale=default_locale)
    now = utcnow()
    row = Broadcast(text=text, kind=kind, segment=segment.as_dict(), button_url=button_url,
                    button_plan=button_plan, status="sending", recipients=len(chosen),
                    created_by=created_by, created_at=now, send_at=send_at or now)
    session.add(row)
    await session.flush()
    await add_many(session, ({
        "dedupe_key": notice_key(row.id, t.channel, t.user_id), "channel": t.channel,
        "user_id": t.user_id, "chat_id": t.chat_id, "kind": KIND,
        "params": notice_params(row, t.subscribed), "send_after": row.send_at,
    } for t in chosen))
    return row


@dataclass(frozen=True)
class Progress:
    """Where a broadcast's notices stand."""

    id: int
    status: str  # scheduled | sending | done | canceled
    recipients: int
    pending: int
    delivered: int
    blocked: int
    failed: int
    skipped: int
    send_at: datetime

    @property
    def settled(self) -> int:
        """Return how many recipients are done with, one way or another."""
        return self.delivered + self.blocked + self.failed + self.skipped

    @property
    def finished(self) -> bool:
        """Tell whether nothing of it is left to send or in the air (its counts are final:
        done, or canceled)."""
        return self.pending == 0

    def params(self) -> dict[str, Any]:
        """Return the counts as a notice's params (kind broadcast_progress or REPORT)."""
        return {"broadcast": self.id, "status": self.status, "recipients": self.recipients,
                "pending": self.pending, "delivered": self.delivered, "blocked": self.blocked,
                "failed": self.failed, "skipped": self.skipped,
                "send_at": int(self.send_at.timestamp())}


_BUCKETS = {"sent": "delivered", "unreachable": "blocked", "failed": "failed",
            "unknown": "failed", "canceled": "skipped"}


async def progress(session: AsyncSession, broadcast_id: int) -> Progress | None:
    """Return a broadcast's counts, or None if there is no such broadcast."""
    row = await session.get(Broadcast, broadcast_id)
    if row is None:
        return None
    counts = dict.fromkeys(("pending", "delivered", "blocked", "failed", "skipped"), 0)
    for status, n in await session.execute(
            select(Notice.status, func.count()).where(
                Notice.dedupe_key.startswith(_prefix(broadcast_id), autoescape=True))
            .group_by(Notice.status)):
        counts[_BUCKETS.get(status, "pending")] += int(n)
    # Recipients chosen but never queued (a key taken already) count as skipped.
    counts["skipped"] += max(0, row.recipients - sum(counts.values()))
    if row.status == "canceled":
        state = "canceled"
    elif counts["pending"] == 0:
        state = "done"
    else:
        state = "scheduled" if row.send_at > utcnow() else "sending"
    return Progress(id=row.id, status=state, recipients=row.recipients,
                    send_at=row.send_at, **counts)


async def cancel(session: AsyncSession, broadcast_id: int) -> int | None:
    """Drop a broadcast's notices not yet sent; return how many, or None if unknown."""
    row = await session.get(Broadcast, broadcast_id)
    if row is None:
        return None
    row.status = "canceled"
    row.canceled_at = utcnow()
    result = await session.execute(
        update(Notice).where(Notice.dedupe_key.startswith(_prefix(broadcast_id),
                                                          autoescape=True),
                             Notice.status == "pending")
        .values(status="canceled", last_error="the broadcast was canceled")
        .execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


async def watch(session: AsyncSession, broadcast_id: int, *, channel: str, chat_id: str,
                message_id: str) -> None:
    """Remember the admin's progress message, for the progress job to edit."""
    row = await session.get(Broadcast, broadcast_id)
    if row is not None:
        row.progress_channel, row.progress_chat = channel, chat_id
        row.progress_message = message_id


REPORT = "broadcast_report"


async def queue_reports(session: AsyncSession, *, edited: Collection[str] = ()) -> int:
    """Queue the report to the admin of each watched broadcast that has settled (one notice
    under `broadcast_report:<id>`, so a report is never sent twice); return how many.

    A broadcast watched through a message on one of the `edited` channels is left out: the
    last edit of its progress message is its report."""
    added = 0
    for row in await watched(session):
        if row.progress_channel in edited and row.progress_message:
            continue
        found = await progress(session, row.id)
        if found is None or not found.finished:
            continue
        row.reported_at = utcnow()
        if row.progress_channel is None or row.progress_chat is None:
            continue
        user_id = (row.created_by or "").partition(":")[2] or row.progress_chat
        added += await enqueue(
            session, dedupe_key=f"{REPORT}:{row.id}", channel=row.progress_channel,
            user_id=user_id, chat_id=row.progress_chat, kind=REPORT, params=found.params())
    return added


async def watched(session: AsyncSession) -> list[Broadcast]:
    """Return the broadcasts whose admin waits for a report."""
    return list(await session.scalars(
        select(Broadcast).where(Broadcast.progress_chat.is_not(None),
                                Broadcast.reported_at.is_(None)).order_by(Broadcast.id)))


async def reported(session: AsyncSession, broadcast_id: int) -> None:
    """Record that the admin has the final report."""
    row = await session.get(Broadcast, broadcast_id)
    if row is not None:
        row.reported_at = utcnow()


async def recent(session: AsyncSession, *, limit: int = 10) -> list[Broadcast]:
    """Return the latest broadcasts, newest first."""
    return list(await session.scalars(select(Broadcast).order_by(Broadcast.id.desc())
                                      .limit(limit)))


def plan_prices(plan_keys: Collection[str], by_key: dict[str, Any]) -> frozenset[str]:
    """Return the Stripe price ids of a catalog plan's lookup keys."""
    return frozenset(by_key[k].id for k in plan_keys if k in by_key)
