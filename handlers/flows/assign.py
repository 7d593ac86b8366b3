"""Assigning the team's seats to members, and taking them back (SPEC §6b.5, admins).

An admin picks a member (a user picker where the chat app has one): a free seat is assigned
to them and they are told by DM; with every seat taken, the preview of adding one is offered
instead. Taking a seat back picks among the members holding one. Whoever is picked is looked
up in the actor's own team, so an id from another workspace names nobody.
"""

from __future__ import annotations

import re
import time
from typing import Any

from billing import teams
from billing.errors import BillingError
from billing.notices import enqueue
from billing.seats import seat_to_buy, team_overview
from billing.state import expect
from handlers.context import Ctx
from handlers.flows.audit import audit
from handlers.flows.team import assigned_count, failed, preview_reply
from handlers.flows.team_access import NOBODY, TeamMember, Who, no_plan, team_action
from handlers.notices import RENDERERS
from handlers.replies import USER, Button, Reply, rows
from handlers.router import router

ASSIGN, UNASSIGN = "team_assign", "team_unassign"  # pending questions
SEAT_ASSIGNED, SEAT_UNASSIGNED = "seat_assigned", "seat_unassigned"  # notice kinds
LISTED = 20  # members offered as buttons; beyond that the admin picks one


def _plan_button(ctx: Ctx) -> Button:
    return Button(ctx.t("Team plan"), action="team:plan")


def _nobody_here(ctx: Ctx) -> list[Reply]:
    return [Reply(ctx.t("That is not a member of this workspace. Nothing was changed."),
                  buttons=rows(_plan_button(ctx)))]


async def _offer_a_seat(ctx: Ctx, acting: Who, seats: int) -> list[Reply]:
    """Say every seat is taken and preview adding one."""
    try:
        buy = await seat_to_buy(ctx.billing, customer_id=acting.customer,
                                assigned=await assigned_count(ctx, acting.team))
    except BillingError as error:
        return failed(ctx, error)
    full = Reply(ctx.t("All {seats} seats are assigned. Add a seat first, then assign it.",
                       seats=seats), title=ctx.t("Assign a seat"))
    return [full] if buy is None else [full, preview_reply(ctx, buy)]


async def _ask(ctx: Ctx, kind: str, text: str) -> Reply:
    async with ctx.billing.db.session() as session:
        await expect(session, channel=ctx.actor.channel, user_id=ctx.actor.user_id, kind=kind)
    return Reply(text, title=ctx.t("Seats"), expect_text=True, pick=USER)


@router.button("team:assign")
@team_action(admin=True, linked=True)
async def ask_assignee(ctx: Ctx, acting: Who, _match: re.Match[str]) -> list[Reply]:
    """Ask an admin which member gets a seat (when one is free)."""
    overview = await team_overview(ctx.billing, customer_id=acting.customer)
    if overview is None:
        return no_plan(ctx)
    assigned = await assigned_count(ctx, acting.team)
    if assigned >= overview.seats:
        return await _offer_a_seat(ctx, acting, overview.seats)
    return [await _ask(ctx, ASSIGN, ctx.t(
        "Who gets a seat? {free} of {seats} seats are free.",
        free=overview.seats - assigned, seats=overview.seats))]


@router.answer(ASSIGN)
@team_action(admin=True, linked=True)
async def assign(ctx: Ctx, acting: Who, text: str, _data: dict[str, object]) -> list[Reply]:
    """Assign a free seat to the member picked and tell them by DM."""
    picked = await acting.app.team_member(acting.team, text)
    if picked is None or picked.role == NOBODY:
        return _nobody_here(ctx)
    overview = await team_overview(ctx.billing, customer_id=acting.customer)
    if overview is None:
        return no_plan(ctx)
    channel, team = ctx.actor.channel, acting.team
    async with ctx.billing.db.session() as session:
        await teams.hold_team(session, channel=channel, team_id=team)  # counted, then taken
        if await teams.holds_seat(session, channel=channel, team_id=team, user_id=picked.id):
            return [Reply(ctx.t("{name} already holds a seat. Nothing was changed.",
                                name=picked.name), buttons=rows(_plan_button(ctx)))]
        assigned = await teams.seat_count(session, channel=channel, team_id=team)
        if assigned < overview.seats:
            await teams.assign_seat(session, channel=channel, team_id=team, user_id=picked.id)
            await _tell(session, ctx, acting, picked, SEAT_ASSIGNED)
            await audit(session, ctx, acting, "assigned", member=picked.name)
    if assigned >= overview.seats:  # taken meanwhile
        return await _offer_a_seat(ctx, acting, overview.seats)
    return [Reply(ctx.t("{name} now holds a seat ({assigned} of {seats} assigned).",
                        name=picked.name, assigned=assigned + 1, seats=overview.seats),
                  buttons=rows(_plan_button(ctx)))]


async def _tell(session: Any, ctx: Ctx, acting: Who, member: TeamMember, kind: str) -> None:
    """Queue the DM that tells a member their seat was assigned or taken back."""
    chat = f"{acting.team}:{member.id}"
    await enqueue(session, dedupe_key=f"{kind}:{acting.team}:{member.id}:{time.time_ns()}",
                  channel=ctx.actor.channel, user_id=chat, chat_id=chat, kind=kind,
                  params={"by": ctx.actor.name or acting.member})


@router.button("team:unassign")
@team_action(admin=True, linked=True)
async def choose_unassign(ctx: Ctx, acting: Who, _match: re.Match[str]) -> list[Reply]:
    """Offer the members holding a seat, to take one back."""
    async with ctx.billing.db.session() as session:
        held = await teams.assigned_seats(session, channel=ctx.actor.channel,
                                          team_id=acting.team)
    if not held:
        return [Reply(ctx.t("No seat is assigned yet. Nothing was changed."),
                      buttons=rows(_plan_button(ctx)))]
    buttons = []
    for member in held[:LISTED]:
        found = await acting.app.team_member(acting.team, member)
        buttons.append(Button(found.name if found else member,
                              action=f"team:unassign:{member}"))
    if len(held) > LISTED:
        buttons.append(Button(ctx.t("Someone else"), action="team:unassign:pick"))
    return [Reply(ctx.t("Whose seat should be taken back?"), title=ctx.t("Unassign a seat"),
                  buttons=rows(*buttons, per_row=2))]


@router.button("team:unassign:pick")
@team_action(admin=True, linked=True)
async def ask_unassign(ctx: Ctx, acting: Who, _match: re.Match[str]) -> list[Reply]:
    """Ask which member's seat to take back (too many to list)."""
    return [await _ask(ctx, UNASSIGN, ctx.t("Whose seat should be taken back?"))]


@router.button(r"team:unassign:([A-Z0-9]{1,32})")
@team_action(admin=True, linked=True)
async def unassign(ctx: Ctx, acting: Who, match: re.Match[str]) -> list[Reply]:
    """Take back the seat of the member pressed."""
    return await _take_back(ctx, acting, match.group(1))


@router.answer(UNASSIGN)
@team_action(admin=True, linked=True)
async def unassign_picked(ctx: Ctx, acting: Who, text: str,
                          _data: dict[str, object]) -> list[Reply]:
    """Take back the seat of the member picked."""
    return await _take_back(ctx, acting, text)


async def _take_back(ctx: Ctx, acting: Who, picked_id: str) -> list[Reply]:
    picked = await acting.app.team_member(acting.team, picked_id)
    if picked is None:
        return _nobody_here(ctx)
    async with ctx.billing.db.session() as session:
        taken = await teams.unassign_seat(session, channel=ctx.actor.channel,
                                          team_id=acting.team, user_id=picked.id)
        if taken:
            await _tell(session, ctx, acting, picked, SEAT_UNASSIGNED)
            await audit(session, ctx, acting, "unassigned", member=picked.name)
    if not taken:
        return [Reply(ctx.t("{name} holds no seat. Nothing was changed.", name=picked.name),
                      buttons=rows(_plan_button(ctx)))]
    return [Reply(ctx.t("{name} no longer holds a seat.", name=picked.name), edit=True,
                  buttons=rows(_plan_button(ctx)))]


def _seat_assigned(ctx: Ctx, params: dict[str, Any]) -> Reply:
    return Reply(ctx.t("{by} gave you a seat of the team plan.", by=str(params.get("by"))),
                 title=ctx.t("Team plan"))


def _seat_unassigned(ctx: Ctx, params: dict[str, Any]) -> Reply:
    return Reply(ctx.t("{by} took back your seat of the team plan. You can request one "
                       "again with /billing.", by=str(params.get("by"))),
                 title=ctx.t("Team plan"))


RENDERERS[SEAT_ASSIGNED] = _seat_assigned
RENDERERS[SEAT_UNASSIGNED] = _seat_unassigned
