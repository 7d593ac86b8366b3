"""A chat user's preferences (SPEC §6.8)."""

from __future__ import annotations

import pytest

from billing.db import Database
from billing.prefs import get_prefs, save_prefs


async def test_preferences_start_unset(db: Database) -> None:
    """It has no preferences for a new chat user."""
    async with db.session() as session:
        assert await get_prefs(session, channel="telegram", user_id="7") is None


async def test_saving_creates_with_defaults_then_updates(db: Database) -> None:
    """It creates preferences with offers off and reminders on, then updates given values."""
    async with db.session() as session:
        await save_prefs(session, channel="telegram", user_id="7", locale="de")
    async with db.session() as session:
        prefs = await get_prefs(session, channel="telegram", user_id="7")
        assert prefs is not None
        assert (prefs.locale, prefs.timezone, prefs.offers, prefs.reminders) == (
            "de", None, False, True)
        await save_prefs(session, channel="telegram", user_id="7", offers=True,
                         timezone="Europe/Berlin")
    async with db.session() as session:
        prefs = await get_prefs(session, channel="telegram", user_id="7")
        assert prefs is not None
        assert (prefs.locale, prefs.timezone, prefs.offers) == ("de", "Europe/Berlin", True)
        assert await get_prefs(session, channel="slack", user_id="7") is None


async def test_unknown_preference_is_refused(db: Database) -> None:
    """It refuses a preference that does not exist and stores nothing."""
    with pytest.raises(AttributeError):
        async with db.session() as session:
            await save_prefs(session, channel="telegram", user_id="7", colour="red")
    async with db.session() as session:
        assert await get_prefs(session, channel="telegram", user_id="7") is None
