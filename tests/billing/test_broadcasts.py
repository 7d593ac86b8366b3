"""Broadcasts: segments from the mirror and the links, checked HTML, one notice per recipient,
the report's counts, cancel, and the claim order behind due notices."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from billing import broadcasts
from billing.broadcast_text import BroadcastError, check_html, plain_text
from billing.broadcasts import Segment
from billing.db import Database
from billing.deliveries import claim, mark_unreachable
from billing.mirror_models import MirrorSubscription
from billing.models import ChatLink, Notice, Preference, utcnow
from billing.notices import enqueue

# user id → (customer, subscription status or None, price, locale, offers)
PEOPLE = {
    "1": ("cus_a", "active", "price_pro", "en", True),
    "2": ("cus_b", "trialing", "price_basic", "de", False),
    "3": ("cus_c", "past_due", "price_pro", None, True),
    "4": ("cus_d", "canceled", "price_basic", "de", True),
    "5": ("cus_e", None, None, "en", False),
}
PRO = frozenset({"price_pro"})


async def _people(db: Database) -> None:
    now = utcnow()
    async with db.session() as s:
        for user, (customer, status, price, locale, offers) in PEOPLE.items():
            s.add(ChatLink(channel="telegram", user_id=user, chat_id=user,
                           customer_id=customer))
            s.add(Preference(channel="telegram", user_id=user, locale=locale, offers=offers))
            if status is not None:
                s.add(MirrorSubscription(id=f"sub_{user}", customer_id=customer,
                                         status=status, price_id=price or "", unit_amount=900,
                                         currency="eur", interval="month", created=now))


async def _users(db: Database, segment: Segment, kind: str = "service") -> set[str]:
    async with db.read() as s:
        return {t.user_id for t in await broadcasts.targets(s, segment, kind=kind)}


async def test_segments_pick_exactly_their_customers(db: Database) -> None:
    """All linked customers, by plan, by status and by language, each exactly; an offer goes
    only to those who opted in to offers."""
    await _people(db)
    assert await _users(db, Segment()) == {"1", "2", "3", "4", "5"}
    assert await _users(db, Segment(), "offer") == {"1", "3", "4"}
    assert await _users(db, Segment(plan="pro", prices=PRO)) == {"1", "3"}
    for status, users in (("active", {"1"}), ("trialing", {"2"}), ("past_due", {"3"}),
                          ("canceled", {"4"})):
        assert await _users(db, Segment(status=status)) == users
    assert await _users(db, Segment(language="de")) == {"2", "4"}
    assert await _users(db, Segment(language="en")) == {"1", "3", "5"}  # no choice: default
    assert await _users(db, Segment(plan="pro", prices=PRO, status="active"), "offer") == {"1"}
    with pytest.raises(BroadcastError):
        Segment(status="paused")


@pytest.mark.parametrize("text", [
    "<b>bold", "<div>x</div>", "<b><i>x</b></i>", "1 < 2", "<a href='javascript:x'>x</a>",
    "<b class='x'>x</b>", "", "<b></b>", "x" * 4000, "<br/>", "<!-- x -->",
    "Tom & Jerry", "&nbsp;hi", "Q&A", "&#0;x", "&#x110000;x",
    "<a href='https://x.example/?a=1&b=2'>x</a>",
])
def test_html_telegram_refuses_is_an_error(text: str) -> None:
    """Markup outside Telegram's HTML subset is refused before anything is queued."""
    with pytest.raises(BroadcastError):
        check_html(text)


def test_telegram_html_is_accepted() -> None:
    """Telegram's tags, links and entities pass and give the visible text."""
    text = ('<b>Sale</b> <i>now</i> &lt;3 <a href="https://x.example/a?b=1&amp;c=2">here</a> '
            '<span class="tg-spoiler">s</span> <pre><code class="language-py">x</code></pre>')
    assert check_html(text) == "Sale now <3 here s x"


def test_entities_errors_say_what_to_write() -> None:
    """A bare "&" or an entity Telegram does not know is named, with the fix."""
    with pytest.raises(BroadcastError, match='bare "&" at character 5: write &amp;'):
        check_html("Tom & Jerry")
    with pytest.raises(BroadcastError, match='"&nbsp;" at character 1 is no entity'):
        check_html("&nbsp;hi")
    assert check_html("a &amp; b &quot;c&quot; &#8364; &#x20AC;") == 'a & b "c" € €'


def test_the_plain_text_spells_links_out() -> None:
    """A chat without formatting gets the visible text with each link's address after its
    label (a label that is the address stays alone)."""
    text = ('<b>Sale</b>: <a href="https://x.example/a?b=1&amp;c=2">here</a>, '
            '<a href="https://y.example">https://y.example</a>\n<blockquote>q</blockquote>')
    assert plain_text(text) == ("Sale: here (https://x.example/a?b=1&c=2), "
                                           "https://y.example\nq")


async def test_one_notice_per_recipient_and_the_report_adds_up(db: Database) -> None:
    """A broadcast queues one notice per chat; blocked, delivered, failed and skipped add up
    to its recipients."""
    await _people(db)
    async with db.session() as s:
        await mark_unreachable(s, channel="telegram", chat_id="5", reason="blocked")
        made = await broadcasts.create(s, text="<b>Hi</b>", kind="service", segment=Segment(),
                                       button_plan="pro")
    async with db.session() as s:
        notices = list(await s.scalars(
            select(Notice).where(Notice.kind == "broadcast")))
        assert sorted(n.user_id for n in notices) == ["1", "2", "3", "4", "5"]
        subscribed = {n.user_id: n.params["subscribed"] for n in notices}
        assert subscribed == {"1": True, "2": True, "3": True, "4": False, "5": False}
        for n in notices:
            n.status = {"1": "sent", "2": "failed"}.get(n.user_id, n.status)
    async with db.session() as s:
        assert await broadcasts.cancel(s, made.id) == 2  # users 3 and 4, still pending
    async with db.read() as s:
        report = await broadcasts.progress(s, made.id)
    assert report is not None
    assert (report.delivered, report.blocked, report.failed, report.skipped) == (1, 1, 1, 2)
    assert report.settled == report.recipients == 5 and report.status == "canceled"


async def test_creating_twice_cannot_repeat_a_recipient(db: Database) -> None:
    """Each copy has a key per broadcast and chat: queued again, none is added."""
    await _people(db)
    async with db.session() as s:
        made = await broadcasts.create(s, text="x", kind="service", segment=Segment())
        rows = [{"dedupe_key": broadcasts.notice_key(made.id, "telegram", "1"),
                 "channel": "telegram", "user_id": "1", "chat_id": "1", "kind": "broadcast",
                 "params": {}}]
        assert await broadcasts.notices_added(s, rows) == 0


async def test_due_notices_go_before_broadcast_messages(db: Database) -> None:
    """A payment failure queued after a broadcast is claimed first."""
    await _people(db)
    earlier = utcnow() - timedelta(minutes=5)
    async with db.session() as s:
        await broadcasts.create(s, text="x", kind="service", segment=Segment(),
                                send_at=earlier)
        await enqueue(s, dedupe_key="payment_failed:in_1@telegram:9", channel="telegram",
                      user_id="9", chat_id="9", kind="payment_failed", params={})
    async with db.session() as s:
        first = await claim(s, limit=2)
    assert [c.kind for c in first] == ["payment_failed", "broadcast"]


async def test_a_scheduled_broadcast_waits(db: Database) -> None:
    """Scheduled for later, nothing of it is claimed before its time."""
    await _people(db)
    async with db.session() as s:
        made = await broadcasts.create(s, text="x", kind="service", segment=Segment(),
                                       send_at=utcnow() + timedelta(hours=1))
    async with db.session() as s:
        assert await claim(s, limit=10) == []
        report = await broadcasts.progress(s, made.id)
    assert report is not None and report.status == "scheduled" and report.pending == 5


async def test_a_claim_takes_at_most_its_limit(db: Database) -> None:
    """Thousands of queued copies are claimed a few at a time, on PostgreSQL too."""
    await _people(db)
    async with db.session() as s:
        await broadcasts.create(s, text="x", kind="service", segment=Segment())
    async with db.session() as s:
        assert len(await claim(s, limit=2)) == 2
