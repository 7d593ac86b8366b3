"""Notices waiting to be pushed into chats (the outbox), each under a unique dedupe key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billing.models import Notice, utcnow


async def enqueue(session: AsyncSession, *, dedupe_key: str, channel: str, user_id: str,
                  chat_id: str, kind: str, params: dict[str, Any],
                  send_after: datetime | None = None) -> bool:
    """Add a notice in the caller's transaction; return False if its key was already used."""
    exists = await session.scalar(select(Notice.id).where(Notice.dedupe_key == dedupe_key))
    if exists is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(Notice(dedupe_key=dedupe_key, channel=channel, user_id=user_id,
                               chat_id=chat_id, kind=kind, params=params,
                               send_after=send_after or utcnow()))
    except IntegrityError:  # a concurrent writer took the key first
        return False
    return True


async def due(session: AsyncSession, *, limit: int = 100) -> list[Notice]:
    """Return pending notices whose time has come, oldest first."""
    rows = await session.scalars(
        select(Notice).where(Notice.status == "pending", Notice.send_after <= utcnow())
        .order_by(Notice.id).limit(limit))
    return list(rows)


async def mark(session: AsyncSession, notice_id: int, *, status: str,
               error: str | None = None) -> None:
    """Record a delivery outcome for a notice."""
    notice = await session.get(Notice, notice_id)
    if notice is None:
        return
    notice.status = status
    notice.attempts += 1
    notice.last_error = error
    if status == "sent":
        notice.sent_at = utcnow()
