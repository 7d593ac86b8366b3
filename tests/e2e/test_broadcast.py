"""`/broadcast` end to end: admins only, the draft's steps, Telegram's formatting kept, the
outbox sending one copy per recipient, the progress message edited while it runs and ending in
the report (a blocked chat counted), cancel, scheduling at a time in the admin's zone, and
`portier broadcast` on the terminal."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from billing.broadcasts import Broadcast
from billing.models import ChatLink, Notice
from billing.prefs import save_prefs
from tests.fakes.telegram_objects import BotMessage, FakeUser
from tests.world import World, make_world

ADMIN = 4242


@pytest.fixture
async def world(database_url: str, tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    """A running Portier with one business admin, sending 100 messages a second; its
    progress messages are edited only when a test asks (the scheduler's round is a minute)."""
    monkeypatch.setenv("PORTIER_PROGRESS_EVERY", "60")
    async with make_world(database_url, tmp_path, send_rate=100,
                          admin_ids=frozenset({ADMIN})) as w:
        yield w


@pytest.fixture
async def paced_world(database_url: str, tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    """A Portier sending 25 messages a second whose scheduler edits progress messages every
    0.2 s (Telegram's few seconds, shortened for the test)."""
    monkeypatch.setenv("PORTIER_PROGRESS_EVERY", str(EVERY))
    async with make_world(database_url, tmp_path, send_rate=25,
                          admin_ids=frozenset({ADMIN})) as w:
        yield w


EVERY = 0.2


async def _recipients(world: World, count: int) -> list[FakeUser]:
    """Link `count` chats straight in the database (a service message to all needs no
    subscription), each a user the fake Telegram knows."""
    users = [world.telegram.user(70_000 + i, first_name=f"R{i}") for i in range(count)]
    async with world.service.runtime.billing.db.session() as s:
        s.add_all(ChatLink(channel="telegram", user_id=str(u.id), chat_id=str(u.id),
                           customer_id=f"cus_progress_{u.id}") for u in users)
    return users


def _admin(world: World) -> FakeUser:
    return world.telegram.user(ADMIN, first_name="Boss", language_code="en")


async def _flush(world: World) -> None:
    outbox = world.service.outbox
    assert outbox is not None
    outbox.kick()
    await outbox.idle()


async def _draft(world: World, admin: FakeUser, text: str, segment: str,
                 kind: str) -> str:
    """Walk the draft to its preview; return the preview's text."""
    asked = await world.say(admin, "/broadcast")
    assert "New broadcast" in (asked.text or "")
    button = await world.say(admin, text)
    segments = await world.press(admin, button, "No button")
    assert not isinstance(segments, str)
    kinds = await world.press(admin, segments, segment)
    assert not isinstance(kinds, str)
    sample = await world.press(admin, kinds, "Service message" if kind == "service"
                               else "Offer")
    assert not isinstance(sample, str)
    preview = await world.telegram.next_message(admin)
    assert "Preview" in (preview.text or "")
    return preview.text or ""


async def test_only_admins_may_broadcast(world: World) -> None:
    """Anyone not in TELEGRAM_ADMIN_IDS gets the unknown-command answer and nothing is
    queued."""
    user, _ = await world.linked_user()
    reply = await world.say(user, "/broadcast")
    assert "I don't know that command" in (reply.text or "")
    async with world.service.runtime.billing.db.read() as s:
        assert list(await s.scalars(select(Notice).where(Notice.kind == "broadcast"))) == []


async def test_bad_html_is_refused_before_anything_is_sent(world: World) -> None:
    """A message Telegram would refuse gets a clear error and the question again."""
    admin = _admin(world)
    await world.say(admin, "/broadcast")
    reply = await world.say(admin, "<b>Sale <i>now</b></i>")
    assert "Telegram would refuse this message" in (reply.text or "")
    for bad, problem in (("<b>Sale", "<b> is never closed"), ("<div>x</div>", "<div> is not"),
                         ("Tom & Jerry", 'a bare "&" at character 5: write &amp;')):
        reply = await world.say(admin, bad)
        assert problem in (reply.text or ""), reply.text
        assert "Nothing was sent" in (reply.text or "")
    assert world.telegram.calls("sendMessage")[-1]["parse_mode"] == "HTML"
    async with world.service.runtime.billing.db.read() as s:
        assert list(await s.scalars(select(Notice).where(Notice.kind == "broadcast"))) == []


async def test_service_message_reaches_all_and_the_report_adds_up(world: World) -> None:
    """Every linked customer gets one copy; a chat that blocked the bot counts as blocked;
    delivered + blocked + failed + skipped is the recipient count."""
    users = [(await world.linked_user())[0] for _ in range(3)]
    world.telegram.fail_next("sendMessage", 403, chat_id=users[2])
    admin = _admin(world)
    preview = await _draft(world, admin, "<b>Maintenance</b> tonight", "All customers",
                           "service")
    assert "3 recipient(s)" in preview
    sent = await world.press(admin, await _preview_message(world, admin), "Send now")
    assert not isinstance(sent, str) and "Broadcast" in (sent.text or "")
    await _flush(world)
    for user in users[:2]:
        got = await world.notice(user, "Maintenance tonight")
        assert got.text == "Maintenance tonight"
        assert got.entities == ({"type": "bold", "offset": 0, "length": 11},)
    report = await world.press(admin, sent, "Refresh")
    assert not isinstance(report, str)
    text = report.text or ""
    assert "report" in text and "3 of 3 settled" in text
    assert "Delivered 2 · blocked 1 · failed 0 · skipped 0" in text


RICH = ('<b>b</b> <i>i</i> <u>u</u> <s>s</s> <a href="https://acme.example/sale">a</a> '
        '<code>c</code> <pre>p</pre> <tg-spoiler>t</tg-spoiler> <blockquote>q</blockquote>')
RICH_TYPES = ["bold", "italic", "underline", "strikethrough", "text_link", "code", "pre",
              "spoiler", "blockquote"]


async def test_the_formatting_reaches_the_sample_the_test_send_and_recipients(
        world: World) -> None:
    """Telegram's HTML is kept: the preview's sample, the test send and each recipient's copy
    show every tag as the entity Telegram makes of it."""
    user, _ = await world.linked_user()
    admin = _admin(world)
    await world.say(admin, "/broadcast")
    button = await world.say(admin, RICH)
    segments = await world.press(admin, button, "No button")
    assert not isinstance(segments, str)
    kinds = await world.press(admin, segments, "All customers")
    assert not isinstance(kinds, str)
    sample = await world.press(admin, kinds, "Service message")
    assert not isinstance(sample, str)
    assert [e["type"] for e in sample.entities] == RICH_TYPES
    assert sample.text == "b i u s a c p t q"
    preview = await world.telegram.next_message(admin)
    tested = await world.press(admin, preview, "Test send to me")
    assert not isinstance(tested, str)
    assert [e["type"] for e in tested.entities] == RICH_TYPES
    preview = await world.telegram.next_message(admin)
    await world.press(admin, preview, "Send now")
    await _flush(world)
    got = await world.notice(user, "b i u s a c p t q")
    assert [e["type"] for e in got.entities] == RICH_TYPES
    assert got.entities[4]["url"] == "https://acme.example/sale"


async def _preview_message(world: World, admin: FakeUser) -> BotMessage:
    return world.telegram.messages(admin)[-1]


async def test_an_offer_reaches_only_those_who_opted_in(world: World) -> None:
    """An offer goes only to customers who turned offers on in /settings."""
    keen, _ = await world.linked_user()
    await world.linked_user()
    async with world.service.runtime.billing.db.session() as s:
        await save_prefs(s, channel="telegram", user_id=str(keen.id), offers=True)
    preview = await _draft(world, _admin(world), "20% off", "All customers", "offer")
    assert "1 recipient(s)" in preview


async def test_cancel_drops_what_is_not_sent_yet(world: World) -> None:
    """Scheduled and canceled, none of its copies goes out; the report counts them as
    skipped."""
    users = [(await world.linked_user())[0] for _ in range(2)]
    admin = _admin(world)
    await _draft(world, admin, "later", "All customers", "service")
    queued = await world.press(admin, await _preview_message(world, admin), "Send in an hour")
    assert not isinstance(queued, str) and "scheduled" in (queued.text or "")
    report = await world.press(admin, queued, "Cancel broadcast")
    assert not isinstance(report, str)
    assert "canceled" in (report.text or "") and "skipped 2" in (report.text or "")
    await _flush(world)
    for user in users:
        assert not any("later" == (m.text or "") for m in world.telegram.messages(user))


async def test_scheduling_at_a_time_in_the_admins_zone(world: World) -> None:
    """A typed time is read in the admin's zone from /settings and confirmed in it; a past
    or unreadable one gets a clear error; the broadcast waits until then (stored in UTC)."""
    users = await _recipients(world, 2)
    admin = _admin(world)
    async with world.service.runtime.billing.db.session() as s:
        await save_prefs(s, channel="telegram", user_id=str(admin.id),
                         timezone="Europe/Berlin")
    await _draft(world, admin, "Merry <b>Christmas</b>", "All customers", "service")
    asked = await world.press(admin, await _preview_message(world, admin), "Send at a time…")
    assert not isinstance(asked, str) and "Europe/Berlin" in (asked.text or "")
    reply = await world.say(admin, "2020-12-24 09:00")
    assert "That time has passed." in (reply.text or "")
    reply = await world.say(admin, "Christmas morning")
    assert "I could not read that time." in (reply.text or "")
    year = datetime.now(UTC).year + (datetime.now(UTC) >= datetime(datetime.now(UTC).year, 12,
                                                                   24, 8, tzinfo=UTC))
    confirm = await world.say(admin, f"{year}-12-24 09:00")
    text = confirm.text or ""
    assert "It goes to 2 recipient(s) on " in text, text
    assert f"Dec 24, {year} at 09:00 (Europe/Berlin)." in text, text
    scheduled = await world.press(admin, confirm, "Schedule")
    assert not isinstance(scheduled, str)
    assert scheduled.message_id == confirm.message_id
    assert (scheduled.text or "").startswith("Broadcast 1: scheduled for ")
    assert f"Dec 24, {year} at 09:00" in (scheduled.text or "")
    async with world.service.runtime.billing.db.read() as s:
        row = await s.get(Broadcast, 1)
        assert row is not None
        assert row.send_at == datetime(year, 12, 24, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
    await _flush(world)
    for user in users:
        assert world.telegram.messages(user) == []
    canceled = await world.press(admin, scheduled, "Cancel broadcast")
    assert not isinstance(canceled, str) and "skipped 2" in (canceled.text or "")


async def test_the_command_line_counts_and_sends(world: World, tmp_path: Path) -> None:
    """`portier broadcast --dry-run` prints the recipient count; a real one is queued and
    `portier broadcast status ID` reports it."""
    await world.linked_user()
    await world.linked_user(language_code="de")
    message = tmp_path / "msg.html"
    message.write_text("<i>Hello</i>", encoding="utf-8")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELEGRAM_", "STRIPE_", "SLACK_", "PORTIER_"))}
    env["DATABASE_URL"] = world.settings.database_url

    async def portier(*args: str) -> str:
        done = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "bot.cli", "broadcast", *args], env=env,
            capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "2 recipient(s)" in await portier("--text-file", str(message), "--dry-run")
    assert "1 recipient(s)" in await portier("--text-file", str(message), "--dry-run",
                                             "--language", "de")
    queued = await portier("--text-file", str(message), "--no-wait")
    assert queued.startswith("broadcast 1:")
    await _flush(world)
    status = await portier("status", "1")
    assert "2 delivered" in status and "done" in status


async def test_the_last_edit_of_the_progress_message_is_the_report(world: World) -> None:
    """The pressed preview becomes the progress message; once every copy is settled its last
    edit is the report, once, and no other message is sent."""
    user, _ = await world.linked_user()
    admin = _admin(world)
    await _draft(world, admin, "News", "All customers", "service")
    preview = await _preview_message(world, admin)
    progress = await world.press(admin, preview, "Send now")
    assert not isinstance(progress, str)
    assert (progress.message_id, progress.edited) == (preview.message_id, True)
    assert (progress.text or "").startswith("Broadcast 1: sending")
    await _flush(world)
    await world.notice(user, "News")
    scheduler = world.service.scheduler
    assert scheduler is not None
    await scheduler.report_broadcasts()
    await scheduler.report_broadcasts()  # nothing more: reported
    await _flush(world)
    report = await world.telegram.next_message(admin)
    assert (report.message_id, report.edited) == (preview.message_id, True)
    assert (report.text or "").startswith("Broadcast 1: report")
    assert "Delivered 1 · blocked 0 · failed 0 · skipped 0" in (report.text or "")
    assert report.buttons() == []
    await world.telegram.assert_no_message(admin)


async def test_a_deleted_progress_message_is_sent_again(world: World) -> None:
    """When the admin deleted the progress message, the next change comes as a new message,
    which is edited from then on; an edit Telegram finds unchanged (after a restart) is
    dropped quietly."""
    users = await _recipients(world, 2)
    admin = _admin(world)
    editor = world.service.progress
    outbox = world.service.outbox
    assert editor is not None and outbox is not None
    editor.every = 0.0
    await outbox.stop()  # nothing goes out until the test says so
    await _draft(world, admin, "Hello", "All customers", "service")
    progress = await world.press(admin, await _preview_message(world, admin), "Send now")
    assert not isinstance(progress, str)
    assert await editor.tick() == 0  # nothing changed: not even one edit
    world.telegram.state.delete(admin.id, progress.message_id)
    async with world.service.runtime.billing.db.session() as s:
        first = await s.scalar(select(Notice).where(Notice.user_id == str(users[0].id)))
        assert first is not None
        first.status = "sent"
    await editor.tick()
    again = await world.telegram.next_message(admin)
    assert not again.edited and again.message_id != progress.message_id
    assert "1 of 2 settled" in (again.text or "")
    editor._shown.clear()  # as after a restart: what the message shows is not known
    await editor.tick()
    assert world.telegram.call_log[-1].description is not None
    assert "message is not modified" in world.telegram.call_log[-1].description
    await outbox.start()
    await _flush(world)
    await editor.tick()
    report = await world.telegram.next_message(admin)
    assert (report.message_id, report.edited) == (again.message_id, True)
    assert "Delivered 2 · blocked 0" in (report.text or "")
    await world.telegram.assert_no_message(admin, within=0.1)


def _edits(world: World, admin: FakeUser, message_id: int) -> list[BotMessage]:
    return [m for m in world.telegram.history(admin)
            if m.message_id == message_id and m.method == "editMessageText"]


async def _until(world: World, admin: FakeUser, message_id: int, start: str,
                 timeout: float = 10.0) -> BotMessage:
    """Wait until the message's text starts with `start`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        current = world.telegram.state.current(admin.id, message_id)
        if current is not None and (current.text or "").startswith(start):
            return current
        assert asyncio.get_running_loop().time() < deadline, current
        await asyncio.sleep(EVERY / 4)


def _settled(message: BotMessage) -> int:
    return int((message.text or "").splitlines()[1].split(" of ")[0].replace(",", ""))


async def test_the_progress_is_edited_while_it_runs_and_cancel_stops_it(
        paced_world: World) -> None:
    """While a broadcast runs its progress message is edited every few seconds (here 0.2 s),
    never twice in a shorter time and never with an unchanged text, and ends in the report
    with a blocked chat counted; a second broadcast canceled mid-way ends as canceled, the
    copies not yet sent skipped."""
    world = paced_world
    users = await _recipients(world, 30)
    world.telegram.fail_next("sendMessage", 403, chat_id=users[5])
    admin = _admin(world)
    await _draft(world, admin, "First", "All customers", "service")
    preview = await _preview_message(world, admin)
    await world.press(admin, preview, "Send now")
    report = await _until(world, admin, preview.message_id, "Broadcast 1: report")
    assert "30 of 30 settled" in (report.text or "")
    assert "Delivered 29 · blocked 1 · failed 0 · skipped 0" in (report.text or "")
    assert report.buttons() == []
    edits = _edits(world, admin, preview.message_id)[1:]  # after the preview's own edit
    running = [m for m in edits if 0 < _settled(m) < 30]
    assert len(running) >= 2, [m.text for m in edits]  # seen moving, not only at the end
    assert [_settled(m) for m in edits] == sorted(_settled(m) for m in edits)
    assert all(a.text != b.text for a, b in zip(edits, edits[1:], strict=False))
    assert all(b.at - a.at >= EVERY * 0.75 for a, b in zip(edits, edits[1:], strict=False))
    refused = [c for c in world.telegram.call_log if c.method == "editMessageText"
               and c.status != 200]
    assert refused == []  # no edit that Telegram finds unchanged
    # The second one is canceled while it runs.
    while world.telegram.state.pop_event(admin.id) is not None:
        pass  # the first one's edits, seen above
    await _draft(world, admin, "Second", "All customers", "service")
    preview = await _preview_message(world, admin)
    await world.press(admin, preview, "Send now")
    moving = await _until(world, admin, preview.message_id, "Broadcast 2: sending")
    while _settled(moving) < 3:
        await asyncio.sleep(EVERY / 4)
        moving = await _until(world, admin, preview.message_id, "Broadcast 2: sending")
    await world.telegram.press(admin, moving, "Cancel broadcast")
    canceled = await _until(world, admin, preview.message_id, "Broadcast 2: canceled")
    assert canceled.buttons() == []
    await asyncio.sleep(EVERY * 3)  # the progress job's last rounds: counts settle
    final = world.telegram.state.current(admin.id, preview.message_id)
    assert final is not None and (final.text or "").startswith("Broadcast 2: canceled")
    got = sum(1 for u in users if any(m.text == "Second" for m in world.telegram.history(u)))
    line = (final.text or "").splitlines()[2]  # the chat blocked before: blocked or skipped
    delivered, blocked, failed, skipped = (int(part.split()[-1]) for part in line.split(" · "))
    assert (delivered, failed, delivered + blocked + skipped) == (got, 0, 30), line
    assert 3 <= got < 29
    async with world.service.runtime.billing.db.read() as s:
        statuses = set(await s.scalars(select(Notice.status).where(
            Notice.dedupe_key.startswith("broadcast:2@"))))
    assert statuses <= {"sent", "unreachable", "canceled"}  # none left pending or in the air


async def test_a_plan_segment_and_its_button(world: World) -> None:
    """By plan, only that plan's subscribers are counted; a plan button opens the plan
    change for a subscriber."""
    pro, _ = await world.linked_user("pro_monthly")
    await world.linked_user("basic_monthly")
    admin = _admin(world)
    await world.say(admin, "/broadcast")
    button = await world.say(admin, "Try <b>Pro</b>")
    segments = await world.press(admin, button, "Plan Pro")
    assert not isinstance(segments, str)
    kinds = await world.press(admin, segments, "Plan Pro")
    assert not isinstance(kinds, str)
    await world.press(admin, kinds, "Service message")
    preview = await world.telegram.next_message(admin)
    assert "1 recipient(s)" in (preview.text or "")
    await world.press(admin, preview, "Send now")
    await _flush(world)
    got = await world.notice(pro, "Try Pro")
    options = await world.press(pro, got, "Switch to Pro")
    assert not isinstance(options, str) and (options.text or "")
