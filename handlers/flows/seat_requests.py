"""Seat requests (SPEC §6b): a member asks for a seat, every billing admin is asked (the billing
channel, else each admin's DM), the first decision wins and updates every copy, the member is
told in a DM; a seat is bought, as previewed, only when none is free.

Channel-neutral, like handlers.flows.team: who acts and whether they may is asked afresh on
every action (handlers.flows.team_access); the member's id in a button names a request only
within the workspace of the admin pressing it.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import Any

from billing import team_intents, teams
from billing.errors import BillingError
from billing.notices import enqueue
from billing.seats import seat_to_buy
from handlers.context import Ctx
from handlers.flows.team import assigned_count, failed
from handlers.flows.team_access import Who, team_action
from handlers.i18n import LOCALES
from handlers.notices import RENDERERS
from handlers.replies import Button, Reply, rows
from handlers.router import router

SEAT_REQUEST, SEAT_DECIDED = "seat_request", "seat_decided"  # notice kinds


def request_ref(team: str, member: str) -> str:
    """Name the messages that carry a member's seat request (one copy for each admin)."""
    return f"seat_request:{team}:{member}"


async def _deciders(ctx: Ctx, acting: Who) -> list[str]:
    """Return the chats a seat request goes to: the billing channel if set, else the DM of
    every billing admin (the team's own admins and those added), else the linking admin's."""
    channel = ctx.actor.channel
    async with ctx.billing.db.session() as session:
        where = await teams.billing_channel(session, channel=channel, team_id=acting.team)
        added = await teams.billing_admins(session, channel=channel, team_id=acting.team)
    if where is not None:
        return [f"{acting.team}:{where}"]
    admins = dict.fromkeys([*await acting.app.team_admins(acting.team), *added])
    chats = [f"{acting.team}:{admin}" for admin in admins]
    if not chats and acting.link is not None:
        chats = [acting.link.chat_id]
    return chats


@router.button("team:request")
@team_action(admin=False, linked=True)
async def request(ctx: Ctx, acting: Who, _match: re.Match[str]) -> list[Reply]:
    """Record a member's request for a seat (once; not for a seat already held) and, in the
    same transaction, the notices that ask every billing admin to decide."""
    channel, team, member = ctx.actor.channel, acting.team, acting.member
    async with ctx.billing.db.session() as session:
        held = await teams.holds_seat(session, channel=channel, team_id=team, user_id=member)
        waiting = member in await teams.seat_requests(session, channel=channel, team_id=team)
    if held:
        return [Reply(ctx.t("You already hold a seat. Nothing was changed."))]
    chats = [] if waiting else await _deciders(ctx, acting)
    params: dict[str, Any] = {"member": member, "team": team, "name": ctx.actor.name or member}
    if chats:
        params |= await _buying(ctx, acting)
    async with ctx.billing.db.session() as session:
        fresh = await teams.request_seat(session, channel=channel, team_id=team,
                                         user_id=member)
        stamp = time.time_ns()
        for chat in chats if fresh else []:
            await enqueue(session, dedupe_key=f"seat_request:{team}:{member}:{stamp}:{chat}",
                          channel=channel, user_id=chat, chat_id=chat, kind=SEAT_REQUEST,
                          params=params)
    if not fresh:
        return [Reply(ctx.t("Your request is already with the billing admins. Nothing was "
                            "changed."))]
    return [Reply(ctx.t("Your request for a seat went to the billing admins."), edit=True)]


async def _buying(ctx: Ctx, acting: Who) -> dict[str, Any]:
    """Return, when no seat is free, what buying one costs (for the request's message)."""
    try:
        buy = await seat_to_buy(ctx.billing, customer_id=acting.customer,
                                assigned=await assigned_count(ctx, acting.team))
    except BillingError:  # no plan to preview, or at [team] max: the request goes as it is
        return {}
    if buy is None:
        return {}
    return {"prorated": buy.prorated, "per_period": buy.per_period, "currency": buy.currency,
            "interval": buy.interval, "interval_count": buy.interval_count}


def _seat_request(ctx: Ctx, params: dict[str, Any]) -> Reply:
    member, team = str(params.get("member") or ""), params.get("team")
    text = ctx.t("{name} asks for a seat of the team plan.", name=str(params.get("name") or member))
    if params.get("currency"):
        currency = str(params["currency"])
        text += "\n" + ctx.t(
            "No seat is free: approving adds one, {amount} prorated on your next invoice, then "
            "{then} {per}.", amount=ctx.money(int(params.get("prorated") or 0), currency),
            then=ctx.money(int(params.get("per_period") or 0), currency),
            per=ctx.interval(str(params.get("interval") or "month"),
                             int(params.get("interval_count") or 1)))
    return Reply(text,
                 title=ctx.t("Seat request"), buttons=rows(
                     Button(ctx.t("Approve"), action=f"team:approve:{member}"),
                     Button(ctx.t("Deny"), action=f"team:deny:{member}"), per_row=2),
                 ref=request_ref(str(team), member) if team else None, locale=ctx.locale)


def _seat_decided(ctx: Ctx, params: dict[str, Any]) -> Reply:
    if params.get("approved"):
        return Reply(ctx.t("Your request was approved: you now hold a seat of the team plan."))
    return Reply(ctx.t("Your request for a seat was declined."))


RENDERERS[SEAT_REQUEST] = _seat_request
RENDERERS[SEAT_DECIDED] = _seat_decided



async def _buying_plan(ctx: Ctx, acting: Who) -> dict[str, Any] | Reply | None:
    """Return the seat to buy (as its preview says) when none is free, None when one is,
    or why not."""
    try:
        buy = await seat_to_buy(ctx.billing, customer_id=acting.customer,
                                assigned=await assigned_count(ctx, acting.team))
    except BillingError as error:
        return failed(ctx, error)[0]
    if buy is None:
        return None
    return {"seats": buy.seats, "before": buy.current_seats,
            "proration_date": buy.proration_date, "amount": buy.prorated}


def _not_done(ctx: Ctx, settled: team_intents.Settled) -> list[Reply]:
    """Say why an approval did not go through (the request waits again)."""
    if settled.status == team_intents.PENDING:
        return [Reply(ctx.t("Stripe did not answer in time. I will try again and tell you "
                            "how it went."))]
    if settled.reason == team_intents.TAKEN:
        return [Reply(ctx.t("The last free seat was just taken. Approve again to add one. "
                            "Nothing was changed."))]
    if settled.error is not None:
        return failed(ctx, settled.error)
    return [Reply(ctx.t("The price changed since the preview. Please try again. Nothing "
                        "was changed."))]


@team_action(admin=True, linked=True)
async def _decide(ctx: Ctx, acting: Who, member: str, *, approve: bool) -> list[Reply]:
    channel, team = ctx.actor.channel, acting.team
    decided = [Reply(ctx.t("That request was already decided. Nothing was changed."))]
    async with ctx.billing.db.session() as session:
        waiting = member in await teams.seat_requests(session, channel=channel, team_id=team)
    if not waiting:  # decided already (the first decision wins), or never asked
        return decided
    picked = await acting.app.team_member(team, member)
    name, by = picked.name if picked else member, ctx.actor.name or acting.member
    plan = await _buying_plan(ctx, acting) if approve else None
    if isinstance(plan, Reply):  # nothing to buy with: the request waits as it was
        return [plan]
    intent = None
    async with ctx.billing.db.session() as session:
        # Claimed by a guarded DELETE: of two admins deciding at once, one wins. An approval
        # is recorded with the claim (billing.team_intents): a crash after it is resumed.
        if not await teams.drop_request(session, channel=channel, team_id=team,
                                        user_id=member):
            return decided
        if approve:
            intent = await team_intents.record(
                session, channel=channel, team_id=team, kind=team_intents.APPROVE,
                params={"customer": acting.customer, "member": member, "name": name,
                        "by": by, "actor": acting.member, "locale": ctx.locale,
                        "buy": plan})
        else:
            requester = f"{team}:{member}"
            await enqueue(session,
                          dedupe_key=f"seat_decided:{team}:{member}:{time.time_ns()}",
                          channel=channel, user_id=requester, chat_id=requester,
                          kind=SEAT_DECIDED, params={"approved": False})
    if intent is not None:
        settled = await team_intents.settle(ctx.billing, intent)
        if settled.status != team_intents.DONE:
            return _not_done(ctx, settled)
    # Every admin's copy of the request says how it was decided, in that admin's language.
    versions = tuple((locale, _decided(replace(ctx, locale=locale), approve, name, by))
                     for locale in LOCALES)
    return [replace(_decided(ctx, approve, name, by), edit=True,
                    replaces=request_ref(team, member), versions=versions)]


def _decided(ctx: Ctx, approve: bool, name: str, by: str) -> Reply:
    text = "\n".join([ctx.t("Approved: the member now holds a seat.") if approve
                      else ctx.t("Declined. The member was told."),
                      ctx.t("The request of {name}, decided by {by}.", name=name, by=by)])
    return Reply(text, title=ctx.t("Seat request"),
                 buttons=rows(Button(ctx.t("Team plan"), action="team:plan")))


def _intent_done(ctx: Ctx, params: dict[str, Any]) -> Reply:
    """Tell the admin that their seat change or approval, delayed, went through."""
    if params.get("kind") == team_intents.APPROVE:
        return _decided(ctx, True, str(params.get("name") or ""), str(params.get("by") or ""))
    return Reply(ctx.t("Done: the team now has {seats} seats.", seats=params.get("seats")),
                 title=ctx.t("Seats"), buttons=rows(Button(ctx.t("Team plan"),
                                                           action="team:plan")))


def _intent_failed(ctx: Ctx, params: dict[str, Any]) -> Reply:
    """Tell the admin that their seat change or approval, delayed, did not go through."""
    reason = str(params.get("reason") or "")
    if reason == team_intents.TAKEN:
        why = ctx.t("The last free seat was just taken.")
    elif reason == team_intents.MOVED:
        why = ctx.t("The price changed since the preview.")
    elif reason == "card_declined":
        why = ctx.t("The card was declined.")
    elif reason in ("seats_out_of_range", "below_assigned", "same_seats"):
        why = ctx.t("That number of seats is no longer possible.")
    else:
        why = ctx.t("Stripe refused it.")
    if params.get("kind") == team_intents.APPROVE:
        text = ctx.t("Approving the request of {name} did not go through: {why} Nothing was "
                     "changed; the request waits again.", name=str(params.get("name") or ""),
                     why=why)
        return Reply(text, title=ctx.t("Seat request"))
    text = ctx.t("Changing to {seats} seats did not go through: {why} Nothing was changed.",
                 seats=params.get("seats"), why=why)
    return Reply(text, title=ctx.t("Seats"), buttons=rows(Button(ctx.t("Team plan"),
                                                                action="team:plan")))


RENDERERS[team_intents.INTENT_DONE] = _intent_done
RENDERERS[team_intents.INTENT_FAILED] = _intent_failed


@router.button(r"team:approve:([A-Z0-9]{1,32})")
async def approve(ctx: Ctx, match: re.Match[str]) -> list[Reply]:
    """Approve a member's seat request: buy a seat if none is free, assign it, tell them."""
    return await _decide(ctx, match.group(1), approve=True)


@router.button(r"team:deny:([A-Z0-9]{1,32})")
async def deny(ctx: Ctx, match: re.Match[str]) -> list[Reply]:
    """Decline a member's seat request and tell them."""
    return await _decide(ctx, match.group(1), approve=False)
