"""A team's notices become one notice per billing admin, as the team's roster says; the
roster (a chat app's Web API) is asked only once the notice's transaction is over."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from billing import events as _events  # noqa: F401 - registers the event handlers
from billing import notices, seat_events, team_intents, teams
from billing.catalog import parse_catalog
from billing.db import Database
from billing.gateway import idempotency_key
from billing.links import link_customer
from billing.mirror_models import MirrorSubscription
from billing.models import ChatLink, Notice, Preference, utcnow
from billing.notices import expand_team_notices, notify
from billing.reminders import scan_renewals
from billing.team_notices import EXPANDED, SEATS_LINE, TO_EXPAND, TeamAdmin
from billing.webhooks import process_pending, record
from tests.billing.conftest import Shop

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


async def writing(db: Database) -> list[str]:
    """Say what of the database is held right now: a write transaction open on it (SQLite:
    another connection cannot take the write lock, even for a moment; PostgreSQL: a session
    holds a transaction id, which a write or a row lock such as FOR UPDATE assigns), or a
    connection of Portier's writing engine checked out (a session open)."""
    checked_out = db.engine.pool.checkedout()  # type: ignore[attr-defined]
    held = [f"{checked_out} session(s) open"] if checked_out else []
    url = make_url(db.url)
    if url.get_backend_name() == "sqlite":
        probe = sqlite3.connect(str(url.database), timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")  # the write lock, given up again at once
            probe.execute("ROLLBACK")
        except sqlite3.OperationalError as error:  # "database is locked"
            held.append(f"a write transaction ({error})")
        finally:
            probe.close()
        return held
    async with db.engine.connect() as connection:
        writers = await connection.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"))
    return held + ([f"{writers} write transaction(s)"] if writers else [])


class Probe(Roster):
    """A roster that records, each time it is asked, whether the database is being written
    (what a slow Web API call there would hold up)."""

    def __init__(self, db: Database, admins: Sequence[TeamAdmin]) -> None:
        super().__init__(admins)
        self.db = db
        self.seen: list[str] = []

    async def __call__(self, team_id: str) -> Sequence[TeamAdmin]:
        self.seen += await writing(self.db)
        return await super().__call__(team_id)


async def _linked(db: Database, customer: str = "cus_team") -> None:
    async with db.session() as session:
        session.add(ChatLink(channel="slack", user_id=f"team:{TEAM}",
                             chat_id=f"{TEAM}:{LINKER}", customer_id=customer))
        session.add(ChatLink(channel="telegram", user_id="7", chat_id="7",
                             customer_id=customer))


async def _notify(db: Database, kind: str = "payment_failed",
                  quiet_hours: str | None = None) -> int:
    async with db.session() as session:
        return await notify(session, customer_id="cus_team", kind=kind,
                            key=f"{kind}:in_1:1", params={"invoice": "in_1"},
                            quiet_hours=quiet_hours)


async def _notices(db: Database) -> list[tuple[str, str, str]]:
    """The notices to send (a team's waiting or expanded row is none)."""
    async with db.session() as session:
        return [(n.kind, n.chat_id, n.dedupe_key) for n in await session.scalars(
            select(Notice).where(Notice.status.not_in((TO_EXPAND, EXPANDED)))
            .order_by(Notice.chat_id, Notice.kind))]


async def _team_rows(db: Database) -> list[tuple[str, str]]:
    async with db.session() as session:
        return [(n.dedupe_key, n.status) for n in await session.scalars(
            select(Notice).where(Notice.user_id == f"team:{TEAM}").order_by(Notice.id))]


async def test_each_admin_gets_one_copy_under_its_own_key(db: Database) -> None:
    """The write adds the person's notice and the team's one waiting row; the expansion
    after it two team copies (the linker is no admin any more: none for them), the German
    admin's language and zone remembered; a second write or expansion adds nothing."""
    await _linked(db)
    roster = Roster([TeamAdmin("U2", "de", "Europe/Berlin"), TeamAdmin("U3")])
    assert await _notify(db) == 2
    assert await _team_rows(db) == [("payment_failed:in_1:1@slack:team:T1", TO_EXPAND)]
    assert await expand_team_notices(db, {"slack": roster}) == 2
    assert await _notify(db) == 0
    assert await expand_team_notices(db, {"slack": roster}) == 0
    assert roster.asked == 1
    assert await _team_rows(db) == [("payment_failed:in_1:1@slack:team:T1", EXPANDED)]
    assert await _notices(db) == [
        ("payment_failed", "7", "payment_failed:in_1:1@telegram:7"),
        ("team_payment_failed", "T1:U2", "payment_failed:in_1:1@slack:T1:U2"),
        ("team_payment_failed", "T1:U3", "payment_failed:in_1:1@slack:T1:U3")]
    async with db.session() as session:
        german = await session.get(Preference, ("slack", "T1:U2"))
        copy = await session.scalar(select(Notice).where(Notice.chat_id == "T1:U2"))
    assert german is not None and (german.locale, german.timezone) == ("de", "Europe/Berlin")
    assert copy is not None and copy.params == {"invoice": "in_1", "team": TEAM}


async def test_without_a_roster_the_linking_admin_is_told(db: Database) -> None:
    """The chat app cannot tell the admins now (or has none registered): the admin who
    linked the team gets the payment problem rather than nobody."""
    await _linked(db)
    assert await _notify(db) == 2
    assert await expand_team_notices(db, {"slack": Roster(None)}) == 1
    assert await _notify(db, kind="action_required") == 2
    assert await _notify(db, kind="payment_received") == 2
    assert await expand_team_notices(db, {}, batch=1) == 2  # one row a batch, all of them
    team = [(kind, chat) for kind, chat, _ in await _notices(db) if chat != "7"]
    assert sorted(team) == [("team_action_required", "T1:U1"),
                            ("team_payment_failed", "T1:U1"),
                            ("team_payment_received", "T1:U1")]


async def test_personal_notices_skip_the_team_and_quiet_hours_follow_each_admin(
        db: Database) -> None:
    """A notice with no team version (a plan change) reaches the person only; a reminder
    waits for the end of each admin's own quiet hours, a payment failure never waits."""
    await _linked(db)
    roster = Roster([TeamAdmin("U2", zone="Pacific/Kiritimati"), TeamAdmin("U3", zone="UTC")])
    assert await _notify(db, kind="plan_changed") == 1
    now = utcnow()
    # Quiet from midnight to 06:00 Kiritimati (UTC+14), i.e. 10:00-16:00 UTC.
    local = (now + timedelta(hours=14)).hour
    quiet = f"{local:02d}:00-{(local + 1) % 24:02d}:00"
    await _notify(db, kind="renewal_reminder", quiet_hours=quiet)
    await expand_team_notices(db, {"slack": roster})
    await _notify(db, kind="payment_failed", quiet_hours=quiet)
    await expand_team_notices(db, {"slack": roster})
    async with db.session() as session:
        rows = {(n.kind, n.chat_id): n.send_after for n in await session.scalars(
            select(Notice).where(Notice.channel == "slack", Notice.user_id != "team:T1"))}
    assert rows[("team_renewal_reminder", "T1:U2")] > now + timedelta(minutes=1)
    assert rows[("team_renewal_reminder", "T1:U3")] <= utcnow()
    assert rows[("team_payment_failed", "T1:U2")] <= utcnow()
    assert roster.asked == 2  # once per expansion that has a team row, not once per copy


async def test_an_expansion_cut_short_leaves_the_row_for_the_next(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed while asking the roster, or failing mid-write (its claim rolled back with the
    copies it had added), the expansion leaves the team's row waiting: the next adds each
    copy once. Two expansions at once add them once too."""
    await _linked(db)
    await _notify(db)

    class Killed(Roster):
        async def __call__(self, team_id: str) -> Sequence[TeamAdmin]:
            raise asyncio.CancelledError  # the process stopping mid-request

    with pytest.raises(asyncio.CancelledError):
        await expand_team_notices(db, {"slack": Killed([])})
    roster = Roster([TeamAdmin("U2"), TeamAdmin("U3")])
    real_add = notices.add_many

    async def add_then_fail(*args: object, **kwargs: object) -> int:
        await real_add(*args, **kwargs)  # type: ignore[arg-type]
        raise OSError("disk full")

    monkeypatch.setattr(notices, "add_many", add_then_fail)
    with pytest.raises(OSError):
        await expand_team_notices(db, {"slack": roster})
    assert await _team_rows(db) == [("payment_failed:in_1:1@slack:team:T1", TO_EXPAND)]
    assert [chat for _, chat, _ in await _notices(db)] == ["7"]
    monkeypatch.undo()
    await _notify(db, kind="action_required")
    assert sorted(await asyncio.gather(*(expand_team_notices(db, {"slack": roster})
                                         for _ in range(3)))) == [0, 0, 4]
    assert sorted((kind, chat) for kind, chat, _ in await _notices(db) if chat != "7") == [
        ("team_action_required", "T1:U2"), ("team_action_required", "T1:U3"),
        ("team_payment_failed", "T1:U2"), ("team_payment_failed", "T1:U3")]


async def test_the_webhook_asks_the_roster_with_no_transaction_open(shop: Shop) -> None:
    """A team's renewal declines: the events' handlers write the team's notices in their
    transactions, and the roster is asked only once those are over (under SQLite a Web API
    call inside would hold every other writer; under PostgreSQL the event's row lock)."""
    customer = shop.customer()
    async with shop.billing.db.session() as session:
        await link_customer(session, channel="slack", user_id=f"team:{TEAM}",
                            chat_id=f"{TEAM}:{LINKER}", customer_id=customer)
    probe = Probe(shop.billing.db, [TeamAdmin("U2"), TeamAdmin("U3")])
    shop.billing.rosters["slack"] = probe
    invoice = await shop.fail_renewal(customer)
    for event in shop.sandbox.events():
        async with shop.billing.db.session() as session:
            await record(session, event)
    while await process_pending(shop.billing):
        pass
    assert probe.asked >= 1 and probe.seen == []
    async with shop.billing.db.session() as session:
        failed = sorted(n.chat_id for n in await session.scalars(
            select(Notice).where(Notice.kind == "team_payment_failed",
                                 Notice.status == "pending")))
        assert await session.scalar(select(Notice.status).where(
            Notice.dedupe_key == f"payment_failed:{invoice}:1@slack:team:{TEAM}")) == EXPANDED
    assert failed == ["T1:U2", "T1:U3"]


async def test_the_scans_ask_the_roster_with_no_transaction_open(db: Database) -> None:
    """A renewal reminder scan writes the team's row, and asks the roster after."""
    catalog = parse_catalog({"business": {"name": "Acme"}, "notices": {"renewal_days": [7]},
                             "plans": [{"key": "team", "name": "Team", "prices": ["team"]}]})
    now = utcnow()
    async with db.session() as session:
        session.add(MirrorSubscription(
            id="sub_team", customer_id="cus_team", price_id="price_team", product_name="Team",
            unit_amount=800, currency="eur", interval="month", quantity=3, status="active",
            current_period_end=now + timedelta(days=6.5), created=now - timedelta(days=20)))
    await _linked(db)
    probe = Probe(db, [TeamAdmin("U2"), TeamAdmin("U3")])
    scan = await scan_renewals(db, catalog, now=now, rosters={"slack": probe})
    assert probe.asked == 1 and probe.seen == []
    assert (scan.due, scan.added) == (2, 3)  # the person's and the team's; 1 + 2 copies
    assert [(kind, chat) for kind, chat, _ in await _notices(db)] == [
        ("renewal_reminder", "7"), ("team_renewal_reminder", "T1:U2"),
        ("team_renewal_reminder", "T1:U3")]


# -- seats changed ---------------------------------------------------------------------------
# Stripe sends customer.subscription.updated with `data.previous_attributes` holding the values
# before the change; an array with a changed element (the subscription's `items`) is there in
# whole (https://docs.stripe.com/api/events/types#event_types-customer.subscription.updated,
# https://docs.stripe.com/api/events/object#event_object-data-previous_attributes). The event's
# `request` names the API request that caused it and its idempotency key
# (https://docs.stripe.com/api/events/object#event_object-request): Portier's are `portier-…`.

async def _team_shop(shop: Shop, *, channel: str | None = "C9", seats: int = 3,
                     link: str = "slack") -> tuple[str, dict[str, Any]]:
    """A customer with `seats` seats of the team price, linked as team T1 (or, with
    link="telegram", to a person), with a billing channel; return it and its subscription."""
    customer = shop.customer(plan=None)
    shop.sandbox.subscribe(customer, "team_seat_monthly", quantity=seats)
    async with shop.billing.db.session() as session:
        if link == "slack":
            await link_customer(session, channel="slack", user_id=f"team:{TEAM}",
                                chat_id=f"{TEAM}:{LINKER}", customer_id=customer)
        else:
            await link_customer(session, channel="telegram", user_id="7", chat_id="7",
                                customer_id=customer)
        if channel:
            await teams.set_billing_channel(session, channel="slack", team_id=TEAM,
                                            conversation=channel)
    shop.billing.rosters["slack"] = Roster([TeamAdmin("U2"), TeamAdmin("U3", "de")])
    await _deliver(shop)
    return customer, shop.subscription(customer)


async def _deliver(shop: Shop) -> None:
    """Hand Portier every event the sandbox made (those it has are recorded once)."""
    for event in shop.sandbox.events():
        async with shop.billing.db.session() as session:
            await record(session, event)
    while await process_pending(shop.billing):
        pass


async def _dashboard(shop: Shop, sub: dict[str, Any], params: dict[str, Any]) -> None:
    """Update the subscription as Stripe's Dashboard would: a plain API request."""
    gateway = shop.billing.gateway
    await gateway.call(gateway.v1.subscriptions.update_async, sub["id"], params)


def _seats_to(sub: dict[str, Any], seats: int) -> dict[str, Any]:
    return {"items": [{"id": sub["items"]["data"][0]["id"], "quantity": seats}],
            "proration_behavior": "create_prorations"}


async def _seat_notices(shop: Shop) -> list[tuple[str, str, int, int, object]]:
    async with shop.billing.db.session() as session:
        return [(n.kind, n.chat_id, n.params["before"], n.params["after"], n.params.get("by"))
                for n in await session.scalars(
                    select(Notice).where(Notice.kind.in_(("team_seats_changed", SEATS_LINE)),
                                         Notice.status == "pending").order_by(Notice.id))]


async def test_seats_changed_elsewhere_reach_each_admin_and_the_billing_channel(
        shop: Shop) -> None:
    """3 → 5 seats in Stripe's Dashboard: each billing admin gets one DM and the billing
    channel one line; the event again, or a metadata change, adds nothing."""
    _, sub = await _team_shop(shop)
    await _dashboard(shop, sub, _seats_to(sub, 5))
    await _deliver(shop)
    assert await _seat_notices(shop) == [
        (SEATS_LINE, f"{TEAM}:C9", 3, 5, None),
        ("team_seats_changed", "T1:U2", 3, 5, None),
        ("team_seats_changed", "T1:U3", 3, 5, None)]
    [event] = [e for e in shop.sandbox.events("customer.subscription.updated")
               if "items" in e["data"].get("previous_attributes", {})]
    assert event["request"]["id"].startswith("req_")  # an API request, not Portier's
    assert not str(event["request"]["idempotency_key"] or "").startswith("portier-")
    async with shop.billing.db.session() as session:  # the same event handled once more
        await seat_events.seats_changed(shop.billing, session, event)
    await _deliver(shop)  # every event redelivered
    await _dashboard(shop, sub, {"metadata": {"note": "x"}})
    await _deliver(shop)
    assert len(await _seat_notices(shop)) == 3
    async with shop.billing.db.session() as session:
        copy = await session.scalar(select(Notice).where(Notice.chat_id == "T1:U2",
                                                         Notice.kind == "team_seats_changed"))
    assert copy is not None and copy.dedupe_key == (
        f"seats_changed:{sub['id']}:{event['id']}@slack:T1:U2")
    assert copy.params["outside"] is True and copy.params["amount"] == 5 * 800


async def test_seats_changed_by_portier_leave_the_channel_to_the_audit_line(
        shop: Shop) -> None:
    """Portier's own change (a team intent, recorded before Stripe is called, sent under its
    idempotency key): the admins are told who asked for it; the billing channel gets no line
    besides the audit line the intent writes."""
    customer, sub = await _team_shop(shop)
    async with shop.billing.db.session() as session:
        intent = await team_intents.record(session, channel="slack", team_id=TEAM,
                                           kind=team_intents.SEATS,
                                           params={"by": "ada", "seats": 4})
    assert intent is not None
    item = sub["items"]["data"][0]["id"]
    await shop.billing.gateway.change_quantity(
        sub["id"], item_id=item, quantity=4, proration_date=shop.sandbox.now(),
        key=intent.key)
    await _deliver(shop)
    assert await _seat_notices(shop) == [("team_seats_changed", "T1:U2", 3, 4, "ada"),
                                         ("team_seats_changed", "T1:U3", 3, 4, "ada")]
    await shop.billing.gateway.change_quantity(  # another key of Portier's: who is unknown
        sub["id"], item_id=item, quantity=6, proration_date=shop.sandbox.now(),
        key=idempotency_key("test-seats", customer, 6))
    await _deliver(shop)
    assert (await _seat_notices(shop))[2:] == [("team_seats_changed", "T1:U2", 4, 6, None),
                                               ("team_seats_changed", "T1:U3", 4, 6, None)]


async def test_no_seats_notice_for_a_person_or_a_change_undone_since(shop: Shop) -> None:
    """A customer linked to a Telegram user only: a quantity change tells no team. A change
    Stripe no longer shows (5, then back to 3, both events handled after) is not told."""
    _, person = await _team_shop(shop, link="telegram", channel=None)
    await _dashboard(shop, person, _seats_to(person, 5))
    await _deliver(shop)
    async with shop.billing.db.session() as session:
        assert not (await session.scalars(select(Notice.kind).where(
            Notice.kind.like("%seats%")))).all()
    _, sub = await _team_shop(shop, channel=None)
    await _dashboard(shop, sub, _seats_to(sub, 5))
    await _dashboard(shop, sub, _seats_to(sub, 3))
    await _deliver(shop)
    assert await _seat_notices(shop) == [("team_seats_changed", "T1:U2", 5, 3, None),
                                         ("team_seats_changed", "T1:U3", 5, 3, None)]
