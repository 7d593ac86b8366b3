"""Pending conversation state: what a chat user's next free-text message answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from billing.models import PendingState, utcnow

DEFAULT_TTL = timedelta(minutes=30)


@dataclass(frozen=True)
class Pending:
    """A question waiting for the chat user's answer."""

    kind: str
    data: dict[str, Any]


async def expect(session: AsyncSession, *, channel: str, user_id: str, kind: str,
                 data: dict[str, Any] | None = None, ttl: timedelta = DEFAULT_TTL) -> None:
    """Remember that the chat user's next message answers `kind`."""
    row = await session.get(PendingState, (channel, user_id))
    if row is None:
        session.add(PendingState(channel=channel, user_id=user_id, kind=kind, data=data or {},
                                 expires_at=utcnow() + ttl))
    else:
        row.kind, row.data, row.expires_at = kind, data or {}, utcnow() + ttl


async def take(session: AsyncSession, *, channel: str, user_id: str) -> Pending | None:
    """Remove and return the chat user's pending question, if it has not expired."""
    row = await session.get(PendingState, (channel, user_id))
    if row is None:
        return None
    pending = Pending(kind=row.kind, data=dict(row.data)) if row.expires_at > utcnow() else None
    await session.delete(row)
    return pending


async def clear(session: AsyncSession, *, channel: str, user_id: str) -> None:
    """Forget the chat user's pending question."""
    await session.execute(delete(PendingState).where(
        PendingState.channel == channel, PendingState.user_id == user_id))
