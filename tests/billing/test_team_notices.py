"""A team's notices become one notice per billing admin, as the team's roster says."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select

from billing.db import Database
from billing.models import ChatLink, Notice, Preference, utcnow
from billing.notices import notify
from billing.team_notices import TeamAdmin, TeamRoster

TEAM, LINKER = "T1", "U1"


class Roster:
    """A roster answering from a list, or failing like a chat app that is away."""

    def __init__(self, admins: Sequence[TeamAdmin] | None) -> None:
        self.admins = admins
        self.asked = 0

    async def __call__(self, team_id: str) -> Sequence[TeamAdmin]:
        self.asked += 1
        if self.admins is None:
            raise ConnectionError("slack is away")
        return self.admins


async def _linked(db: Database) -> None:
    async with db.session() as session:
        session.add(ChatLink(channel="slack", user_id=f"team:{TEAM}",
                             chat_id=f"{TEAM}:{LINKER}", customer_id="cus_team"))
        session.add(ChatLink(channel="telegram", user_id="7", chat_id="7",
                             customer_id="cus_team"))


async def _notify(db: Database, rosters: dict[str, TeamRoster], kind: str = "payment_failed",
                  quiet_hours: str | None = None) -> int:
    async with db.session() as session:
        return await notify(session, customer_id="cus_team", kind=kind,
                            key=f"{kind}:in_1:1", params={"invoice": "in_1"},
                            quiet_hours=quiet_hours, rosters=rosters)


async def _notices(db: Database) -> list[tuple[str, str, str]]:
    async with db.session() as session:
        return [(n.kind, n.chat_id, n.dedupe_key) for n in await session.scalars(
            select(Notice).order_by(Notice.chat_id))]


async def test_each_admin_gets_one_copy_under_its_own_key(db: Database) -> None:
    """Two admins, two team copies (the linker is no admin any more: none for them), the
    German admin's language and zone remembered; a second write adds nothing."""
    await _linked(db)
    roster = Roster([TeamAdmin("U2", "de", "Europe/Berlin"), TeamAdmin("U3")])
    assert await _notify(db, {"slack": roster}) == 3
    assert await _notify(db, {"slack": roster}) == 0
    assert await _notices(db) == [
        ("payment_failed", "7", "payment_failed:in_1:1@telegram:7"),
        ("team_payment_failed", "T1:U2", "payment_failed:in_1:1@slack:T1:U2"),
        ("team_payment_failed", "T1:U3", "payment_failed:in_1:1@slack:T1:U3")]
    async with db.session() as session:
        german = await session.get(Preference, ("slack", "T1:U2"))
    assert german is not None and (german.locale, german.timezone) == ("de", "Europe/Berlin")


async def test_without_a_roster_the_linking_admin_is_told(db: Database) -> None:
    """The chat app cannot tell the admins now (or has none registered): the admin who
    linked the team gets the payment problem rather than nobody."""
    await _linked(db)
    assert await _notify(db, {"slack": Roster(None)}) == 2
    assert await _notify(db, {}, kind="action_required") == 2
    team = [(kind, chat) for kind, chat, _ in await _notices(db) if chat != "7"]
    assert sorted(team) == [("team_action_required", "T1:U1"),
                            ("team_payment_failed", "T1:U1")]


async def test_personal_notices_skip_the_team_and_quiet_hours_follow_each_admin(
        db: Database) -> None:
    """A notice with no team version (a plan change) reaches the person only; a reminder
    waits for the end of each admin's own quiet hours, a payment failure never waits."""
    await _linked(db)
    roster = Roster([TeamAdmin("U2", zone="Pacific/Kiritimati"), TeamAdmin("U3", zone="UTC")])
    assert await _notify(db, {"slack": roster}, kind="plan_changed") == 1
    now = utcnow()
    # Quiet from midnight to 06:00 Kiritimati (UTC+14), i.e. 10:00-16:00 UTC.
    local = (now + timedelta(hours=14)).hour
    quiet = f"{local:02d}:00-{(local + 1) % 24:02d}:00"
    await _notify(db, {"slack": roster}, kind="renewal_reminder", quiet_hours=quiet)
    await _notify(db, {"slack": roster}, kind="payment_failed", quiet_hours=quiet)
    async with db.session() as session:
        rows = {(n.kind, n.chat_id): n.send_after for n in await session.scalars(
            select(Notice).where(Notice.channel == "slack"))}
    assert rows[("team_renewal_reminder", "T1:U2")] > now + timedelta(minutes=1)
    assert rows[("team_renewal_reminder", "T1:U3")] <= utcnow()
    assert rows[("team_payment_failed", "T1:U2")] <= utcnow()
    assert roster.asked == 2  # once per write that has a team copy, not once per copy
