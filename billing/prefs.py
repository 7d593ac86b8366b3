"""A chat user's preferences."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from billing.models import Preference


async def get_prefs(session: AsyncSession, *, channel: str, user_id: str) -> Preference | None:
    """Return the chat user's stored preferences, if any."""
    return await session.get(Preference, (channel, user_id))


async def save_prefs(session: AsyncSession, *, channel: str, user_id: str,
                     **values: object) -> Preference:
    """Create or update the chat user's preferences with the given values."""
    row = await session.get(Preference, (channel, user_id))
    if row is None:
        row = Preference(channel=channel, user_id=user_id, offers=False, reminders=True)
        session.add(row)
    for name, value in values.items():
        if not hasattr(Preference, name):
            raise AttributeError(name)
        setattr(row, name, value)
    return row
