"""`/broadcast` for business admins: a message to a segment of the linked customers
(diagram: broadcast.mmd).

    /broadcast → the text (Telegram HTML, checked) → a button: none, a link, or a plan
    → the segment: all, a status, a plan or a language → the kind: offer or service
    → the preview with the recipient count: test send · send now · in an hour · at a time
      (typed in the admin's time zone → "It goes … on Thu, Dec 24, 2026 at 09:00": schedule)
      · discard
    → the pressed message becomes the progress message, edited every few seconds while it
      runs (bot.progress; Refresh edits it at once) and last into the report · Cancel

Only admins reach it (routes registered `admin=True`; the free-text answers check it too).
The draft lives in the pending state (billing.state); sending is billing.broadcasts' (one
outbox notice per recipient).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from billing import broadcasts
from billing.broadcast_text import BroadcastError, check_button_url, check_html
from billing.broadcasts import Progress, Segment
from billing.models import utcnow
from billing.state import expect, take
from handlers.context import Ctx
from handlers.i18n import LANGUAGES
from handlers.notices import render_notice
from handlers.replies import Button, Reply, rows
from handlers.router import router
from handlers.when import WhenError, parse_when

KIND = "broadcast"
_KEY = r"([a-z0-9_-]{1,24})"


async def _save(ctx: Ctx, data: dict[str, Any]) -> None:
    async with ctx.billing.db.session() as session:
        await expect(session, channel=ctx.actor.channel, user_id=ctx.actor.user_id, kind=KIND,
                     data=data)


async def _draft(ctx: Ctx) -> dict[str, Any] | None:
    async with ctx.billing.db.session() as session:
        pending = await take(session, channel=ctx.actor.channel, user_id=ctx.actor.user_id)
    if pending is None or pending.kind != KIND:
        if pending is not None:  # someone else's question: leave it waiting
            async with ctx.billing.db.session() as session:
                await expect(session, channel=ctx.actor.channel, user_id=ctx.actor.user_id,
                             kind=pending.kind, data=pending.data)
        return None
    return pending.data


def _expired(ctx: Ctx) -> list[Reply]:
    return [Reply(ctx.t("This draft is gone. Start again with /broadcast."))]


def _ask_text(ctx: Ctx, problem: str | None = None) -> Reply:
    text = ctx.t("Send me the message. You may use Telegram's formatting: <b>bold</b>, "
                 "<i>italic</i>, <a href=\"https://…\">links</a>.")
    if problem:
        text = ctx.t("Telegram would refuse this message: {problem}. Nothing was sent.",
                     problem=problem) + "\n" + text
    return Reply(text, title=ctx.t("New broadcast"), expect_text=True)


@router.command("broadcast", admin=True)
async def start_broadcast(ctx: Ctx, _args: str) -> list[Reply]:
    """Start a draft: ask for the text."""
    await _save(ctx, {"step": "text"})
    return [_ask_text(ctx)]


@router.answer(KIND)
async def take_answer(ctx: Ctx, text: str, data: dict[str, Any]) -> list[Reply]:
    """Take the message text, or the button's link."""
    if not ctx.admin:
        return [Reply(ctx.t("I don't know that command. /help lists what I can do."))]
    step = data.get("step")
    if step == "text":
        try:
            check_html(text)
        except BroadcastError as error:
            await _save(ctx, data)
            return [_ask_text(ctx, str(error))]
        data.update(step="button", text=text)
        await _save(ctx, data)
        return [_ask_button(ctx)]
    if step == "url":
        try:
            data.update(url=check_button_url(text), step="segment")
        except BroadcastError as error:
            await _save(ctx, data)
            return [Reply(ctx.t("That link does not work: {problem}. Send an https:// link.",
                                problem=str(error)), expect_text=True)]
        await _save(ctx, data)
        return [_ask_segment(ctx)]
    if step == "when":
        return await _take_time(ctx, text, data)
    await _save(ctx, data)
    return [Reply(ctx.t("Please answer with the buttons."))]


def _ask_button(ctx: Ctx) -> Reply:
    buttons = [Button(ctx.t("No button"), action="bc:btn:none"),
               Button(ctx.t("A link"), action="bc:btn:url")]
    buttons += [Button(ctx.t("Plan {plan}", plan=p.name), action=f"bc:btn:plan:{p.key}")
                for p in ctx.billing.catalog.plans]
    return Reply(ctx.t("Add a button under the message?"), buttons=rows(*buttons, per_row=2))


@router.button(r"bc:btn:(none|url|plan:[a-z0-9_-]{1,24})", admin=True)
async def choose_button(ctx: Ctx, match: re.Match[str]) -> list[Reply]:
    """Take the button choice."""
    data = await _draft(ctx)
    if data is None or "text" not in data:
        return _expired(ctx)
    choice = match.group(1)
    if choice == "url":
        data["step"] = "url"
        await _save(ctx, data)
        return [Reply(ctx.t("Send me the link the button opens."), expect_text=True)]
    data.update(step="segment", url=None, plan=None)
    if choice.startswith("plan:"):
        key = choice.removeprefix("plan:")
        if ctx.billing.catalog.plan(key) is None:
            await _save(ctx, data)
            return [_ask_button(ctx)]
        data["plan"] = key
    await _save(ctx, data)
    return [_ask_segment(ctx)]


def _ask_segment(ctx: Ctx) -> Reply:
    buttons = [Button(ctx.t("All customers"), action="bc:seg:all")]
    names = {"active": ctx.t("Active"), "trialing": ctx.t("Trialing"),
             "past_due": ctx.t("Past due"), "canceled": ctx.t("Canceled")}
    buttons += [Button(names[s], action=f"bc:seg:status:{s}") for s in broadcasts.STATUSES]
    buttons += [Button(ctx.t("Plan {plan}", plan=p.name), action=f"bc:seg:plan:{p.key}")
                for p in ctx.billing.catalog.plans]
    buttons += [Button(name, action=f"bc:seg:language:{code}")
                for code, name in LANGUAGES.items()]
    return Reply(ctx.t("Who should get it?"), buttons=rows(*buttons, per_row=2))


@router.button(rf"bc:seg:(all|status|plan|language):?{_KEY}?", admin=True)
async def choose_segment(ctx: Ctx, match: re.Match[str]) -> list[Reply]:
    """Take the segment, ask for the kind."""
    data = await _draft(ctx)
    if data is None or "text" not in data:
        return _expired(ctx)
    field, value = match.group(1), match.group(2)
    valid = (field == "all" or (field == "status" and value in broadcasts.STATUSES)
             or (field == "plan" and value and ctx.billing.catalog.plan(value))
             or (field == "language" and value in LANGUAGES))
    if not valid:
        await _save(ctx, data)
        return [_ask_segment(ctx)]
    data.update(step="kind", segment={} if field == "all" else {field: value})
    await _save(ctx, data)
    return [Reply(ctx.t("Is it an offer (only customers who opted in to offers get it) or a "
                        "service message (everyone in the segment gets it)?"),
                  buttons=rows(Button(ctx.t("Offer"), action="bc:kind:offer"),
                               Button(ctx.t("Service message"), action="bc:kind:service"),
                               per_row=2))]


def _segment(ctx: Ctx, chosen: dict[str, Any]) -> Segment:
    plan = ctx.billing.catalog.plan(str(chosen.get("plan"))) if chosen.get("plan") else None
    prices = broadcasts.plan_prices(plan.prices, ctx.billing.prices.by_key) if plan else None
    return Segment(plan=plan.key if plan else None, prices=prices or frozenset(),
                   status=chosen.get("status"), language=chosen.get("language"))


async def _count(ctx: Ctx, data: dict[str, Any]) -> int:
    async with ctx.billing.db.read() as session:
        return len(await broadcasts.targets(session, _segment(ctx, data["segment"]),
                                            kind=data["kind"]))


@router.button(r"bc:kind:(offer|service)", admin=True)
async def choose_kind(ctx: Ctx, match: re.Match[str]) -> list[Reply]:
    """Take the kind and show the preview."""
    data = await _draft(ctx)
    if data is None or "segment" not in data:
        return _expired(ctx)
    data.update(step="preview", kind=match.group(1))
    await _save(ctx, data)
    return await _preview(ctx, data)


async def _preview(ctx: Ctx, data: dict[str, Any]) -> list[Reply]:
    count = await _count(ctx, data)
    return [_sample(ctx, data, subscribed=False),
            Reply(ctx.t("It goes to {count} recipient(s).", count=count),
                  title=ctx.t("Preview"),
                  buttons=rows(Button(ctx.t("Test send to me"), action="bc:test"),
                               Button(ctx.t("Send now"), action="bc:go:now"),
                               Button(ctx.t("Send in an hour"), action="bc:go:hour"),
                               Button(ctx.t("Send at a time…"), action="bc:at"),
                               Button(ctx.t("Discard"), action="bc:drop"), per_row=2))]


_READY = ("preview", "when", "confirm")  # steps from which the draft can be sent


def _ask_time(ctx: Ctx, problem: str | None = None) -> Reply:
    text = ctx.t("When should it go? Send a date and time in your time zone ({zone}), such "
                 "as 2026-12-24 09:00, tomorrow 09:00 or 09:00 (the next 09:00). /settings "
                 "changes the time zone.", zone=ctx.zone)
    return Reply(f"{problem}\n{text}" if problem else text, expect_text=True)


@router.button("bc:at", admin=True)
async def ask_time(ctx: Ctx, _match: re.Match[str]) -> list[Reply]:
    """Ask when the broadcast should go."""
    data = await _draft(ctx)
    if data is None or data.get("step") not in _READY:
        return _expired(ctx)
    data["step"] = "when"
    await _save(ctx, data)
    return [_ask_time(ctx)]


def _time_problem(ctx: Ctx, reason: str) -> str:
    return {"past": ctx.t("That time has passed."),
            "far": ctx.t("That is more than a year ahead."),
            "missing": ctx.t("That time does not exist in {zone}: the clocks skip it.",
                             zone=ctx.zone)}.get(
        reason, ctx.t("I could not read that time."))


async def _take_time(ctx: Ctx, text: str, data: dict[str, Any]) -> list[Reply]:
    try:
        at = parse_when(text, zone=ctx.zone, now=utcnow())
    except WhenError as error:
        await _save(ctx, data)
        return [_ask_time(ctx, _time_problem(ctx, error.reason))]
    data.update(step="confirm", at=at.isoformat())
    await _save(ctx, data)
    count = await _count(ctx, data)
    return [Reply(ctx.t("It goes to {count} recipient(s) on {moment} ({zone}).",
                        count=count, moment=ctx.moment(at), zone=ctx.zone),
                  title=ctx.t("Schedule the broadcast?"),
                  buttons=rows(Button(ctx.t("Schedule"), action="bc:go:at"),
                               Button(ctx.t("Another time"), action="bc:at"),
                               Button(ctx.t("Discard"), action="bc:drop"), per_row=2))]


def _sample(ctx: Ctx, data: dict[str, Any], *, subscribed: bool) -> Reply:
    return render_notice(ctx, "broadcast", {"text": data["text"], "url": data.get("url"),
                                            "plan": data.get("plan"),
                                            "subscribed": subscribed})


@router.button("bc:test", admin=True)
async def test_send(ctx: Ctx, _match: re.Match[str]) -> list[Reply]:
    """Send the message to the admin as a recipient would get it."""
    data = await _draft(ctx)
    if data is None or data.get("step") != "preview":
        return _expired(ctx)
    await _save(ctx, data)
    return [_sample(ctx, data, subscribed=ctx.link is not None), *(await _preview(ctx, data))[1:]]


@router.button("bc:drop", admin=True)
async def discard(ctx: Ctx, _match: re.Match[str]) -> list[Reply]:
    """Forget the draft."""
    await _draft(ctx)
    return [Reply(ctx.t("The draft is discarded. Nothing was sent."))]


@router.button(r"bc:go:(now|hour|at)", admin=True)
async def send(ctx: Ctx, match: re.Match[str]) -> list[Reply]:
    """Queue the broadcast: one notice per recipient, now, in an hour or at the time taken."""
    data = await _draft(ctx)
    when = match.group(1)
    if data is None or data.get("step") not in _READY or (when == "at" and "at" not in data):
        return _expired(ctx)
    at = utcnow() + timedelta(hours=1) if when == "hour" else None
    if when == "at":
        at = datetime.fromisoformat(str(data["at"]))
        if at <= utcnow():  # it passed while the confirmation waited
            data["step"] = "when"
            await _save(ctx, data)
            return [_ask_time(ctx, _time_problem(ctx, "past"))]
    async with ctx.billing.db.session() as session:
        made = await broadcasts.create(
            session, text=data["text"], kind=data["kind"], segment=_segment(ctx, data["segment"]),
            button_url=data.get("url"), button_plan=data.get("plan"), send_at=at,
            created_by=f"{ctx.actor.channel}:{ctx.actor.user_id}")
        # The pressed preview becomes the progress message, edited every few seconds while
        # the broadcast runs and last into its report (bot.progress); a chat app that names
        # no pressed message gets the report as a message of its own.
        await broadcasts.watch(session, made.id, channel=ctx.actor.channel,
                               chat_id=ctx.actor.chat_id, message_id=ctx.actor.message_id or "")
        found = await broadcasts.progress(session, made.id)
    assert found is not None  # noqa: S101 - created in this very transaction
    return [_progress(ctx, found, edit=True)]


def _progress(ctx: Ctx, p: Progress, *, edit: bool = False) -> Reply:
    return replace(render_notice(ctx, "broadcast_progress", p.params()), edit=edit)


@router.button(r"bc:p:(\d{1,12})", admin=True)
async def refresh(ctx: Ctx, match: re.Match[str]) -> list[Reply]:
    """Edit the progress message with the current counts (the report once all are done)."""
    async with ctx.billing.db.session() as session:
        found = await broadcasts.progress(session, int(match.group(1)))
        if found is not None and found.finished:
            await broadcasts.reported(session, found.id)  # this edit is the report
    if found is None:
        return _expired(ctx)
    return [_progress(ctx, found, edit=True)]


@router.button(r"bc:x:(\d{1,12})", admin=True)
async def cancel(ctx: Ctx, match: re.Match[str]) -> list[Reply]:
    """Drop the broadcast's notices not yet sent; show the report."""
    broadcast_id = int(match.group(1))
    async with ctx.billing.db.session() as session:
        await broadcasts.cancel(session, broadcast_id)
        found = await broadcasts.progress(session, broadcast_id)
        if found is not None and found.finished:  # else copies still in the air: the progress
            await broadcasts.reported(session, broadcast_id)  # job's last edit reports them
    if found is None:
        return _expired(ctx)
    return [_progress(ctx, found, edit=True)]
