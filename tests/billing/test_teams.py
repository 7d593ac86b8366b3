"""The team tables' own rules: an event id is first once; old event ids and message copies
are forgotten."""

from __future__ import annotations

from datetime import timedelta

from billing import teams
from billing.db import Database
from billing.models import utcnow


async def test_an_event_id_is_first_once(db: Database) -> None:
    async with db.session() as session:
        first = await teams.first_delivery(session, channel="slack", event_id="Ev1",
                                           team_id="T1")
        again = await teams.first_delivery(session, channel="slack", event_id="Ev1",
                                           team_id="T1")
    assert (first, again) == (True, False)


async def test_old_event_ids_and_copies_are_forgotten(db: Database) -> None:
    """Event ids are kept a day (Slack's retries come within five minutes:
    https://api.slack.com/apis/events-api#retries), message copies 30 days; newer ones stay,
    so a retry is still recognised and a decision still replaces its copies."""
    async with db.session() as session:
        await teams.first_delivery(session, channel="slack", event_id="EvOld", team_id="T1")
        await teams.remember_copy(session, channel="slack", ref="seat_request:T1:U1",
                                  chat_id="T1:U9", message_id="1.000")
    later = utcnow() + teams.EVENT_IDS_KEPT + timedelta(minutes=1)
    async with db.session() as session:
        assert await teams.forget_old(session, now=later) == 1  # the event id only
        await teams.first_delivery(session, channel="slack", event_id="EvNew", team_id="T1")
    async with db.session() as session:
        assert await teams.first_delivery(session, channel="slack", event_id="EvOld",
                                          team_id="T1")  # forgotten: first again
        assert not await teams.first_delivery(session, channel="slack", event_id="EvNew",
                                              team_id="T1")
    much_later = utcnow() + teams.COPIES_KEPT + timedelta(minutes=1)
    async with db.session() as session:
        assert await teams.forget_old(session, now=much_later) == 3
        assert await teams.take_copies(session, channel="slack",
                                       ref="seat_request:T1:U1") == []


async def test_a_copy_is_taken_with_its_language(db: Database) -> None:
    """Each copy keeps the language it was written in, so that replacing it keeps it too."""
    async with db.session() as session:
        for chat, locale in (("T1:D1", "de"), ("T1:D2", None)):
            await teams.remember_copy(session, channel="slack", ref="seat_request:T1:U1",
                                      chat_id=chat, message_id="1.000", locale=locale)
    async with db.session() as session:
        taken = await teams.take_copies(session, channel="slack", ref="seat_request:T1:U1")
    assert sorted(taken, key=lambda copy: copy[0]) == [("T1:D1", "1.000", "de"),
                                                      ("T1:D2", "1.000", None)]
