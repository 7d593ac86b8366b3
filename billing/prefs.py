"""A chat user's preferences."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billing.models import Preference

FIELDS = frozenset({"locale", "timezone", "offers", "reminders"})


async def get_prefs(session: AsyncSession, *, channel: str, user_id: str) -> Preference | None:
    """Return the chat user's stored preferences, if any."""
    return await session.get(Preference, (channel, user_id))


async def save_prefs(session: AsyncSession, *, channel: str, user_id: str,
                     **values: object) -> Preference:
    """Create or update the chat user's preferences with the given values."""
    unknown = sorted(set(values) - FIELDS)
    if unknown:  # only preference columns: never the key or the bookkeeping
        raise AttributeError(", ".join(unknown))
    row = await session.get(Preference, (channel, user_id))
    if row is None:
        row = Preference(channel=channel, user_id=user_id, offers=False, reminders=True)
        session.add(row)
    for name, value in values.items():
        setattr(row, name, value)
    return row


async def remember_locale(session: AsyncSession, *, channel: str, user_id: str,
                          locale: str) -> Preference | None:
    """Store the language a chat app reports for the user, unless they have one already."""
    row = await session.get(Preference, (channel, user_id))
    if row is not None and row.locale is not None:
        return row
    try:
        async with session.begin_nested():  # two first updates at once: the other one wins
            row = await save_prefs(session, channel=channel, user_id=user_id, locale=locale)
    except IntegrityError:
        row = await session.get(Preference, (channel, user_id))
    return row
