"""The team's billing channel and billing admins (SPEC §6b.3, admins).

The billing channel gets seat requests (instead of each admin's DM) and an audit line for
every seat change. Billing admins are members an admin added: they count as admins on every
action until removed, besides the workspace's own admins and owners and the installer.
"""

from __future__ import annotations

import re
import time
from typing import Any

from billing import teams
from billing.notices import enqueue
from billing.state import expect
from handlers.context import Ctx
from handlers.flows.team_access import NOBODY, Who, team_action
from handlers.notices import RENDERERS
from handlers.replies import CONVERSATION, USER, Button, Reply, rows
from handlers.router import router

PICK_CHANNEL, PICK_ADMIN = "team_billing_channel", "team_billing_admin"  # pending questions
CHANNEL_SET, ADMIN_ADDED = "billing_channel_set", "billing_admin_added"  # notice kinds


def _plan_button(ctx: Ctx) -> Button:
    return Button(ctx.t("Team plan"), action="team:plan")


async def _ask(ctx: Ctx, kind: str, text: str, pick: str) -> Reply:
    async with ctx.billing.db.session() as session:
        await expect(session, channel=ctx.actor.channel, user_id=ctx.actor.user_id, kind=kind)
    return Reply(text, title=ctx.t("Billing"), expect_text=True, pick=pick)


@router.button("team:channel")
@team_action(admin=True)
async def ask_channel(ctx: Ctx, acting: Who, _match: re.Match[str]) -> list[Reply]:
    """Ask an admin which channel gets billing notices (or to stop using one)."""
    async with ctx.billing.db.session() as session:
        current = await teams.billing_channel(session, channel=ctx.actor.channel,
                                              team_id=acting.team)
    replies = []
    if current is not None:
        replies.append(Reply(ctx.t("A billing channel is set: seat requests and seat changes "
                                   "go there."), title=ctx.t("Billing channel"),
                             buttons=rows(Button(ctx.t("Stop using a billing channel"),
                                                 action="team:channel:off"))))
    replies.append(await _ask(ctx, PICK_CHANNEL, ctx.t(
        "Which channel gets seat requests and an audit line for every seat change? Add the "
        "app to it first."), CONVERSATION))
    return replies


@router.answer(PICK_CHANNEL)
@team_action(admin=True)
async def set_channel(ctx: Ctx, acting: Who, text: str,
                      _data: dict[str, object]) -> list[Reply]:
    """Make the channel picked the team's billing channel and say so there."""
    conversation = await acting.app.team_conversation(acting.team, text)
    if conversation is None:
        return [Reply(ctx.t("I can't post in that channel. Add the app to it, then choose it "
                            "again. Nothing was changed."), buttons=rows(_plan_button(ctx)))]
    chat = f"{acting.team}:{conversation}"
    async with ctx.billing.db.session() as session:
        await teams.set_billing_channel(session, channel=ctx.actor.channel, team_id=acting.team,
                                        conversation=conversation)
        await enqueue(session, dedupe_key=f"{CHANNEL_SET}:{chat}:{time.time_ns()}",
                      channel=ctx.actor.channel, user_id=chat, chat_id=chat, kind=CHANNEL_SET,
                      params={"by": ctx.actor.name or acting.member})
    return [Reply(ctx.t("Done: seat requests and seat changes now go to the billing channel."),
                  buttons=rows(_plan_button(ctx)))]


@router.button("team:channel:off")
@team_action(admin=True)
async def clear_channel(ctx: Ctx, acting: Who, _match: re.Match[str]) -> list[Reply]:
    """Stop using a billing channel: seat requests go to the billing admins' DMs again."""
    async with ctx.billing.db.session() as session:
        await teams.set_billing_channel(session, channel=ctx.actor.channel, team_id=acting.team,
                                        conversation=None)
    return [Reply(ctx.t("Done: seat requests go to the billing admins by DM again."),
                  edit=True, buttons=rows(_plan_button(ctx)))]


@router.button("team:admins")
@team_action(admin=True)
async def show_admins(ctx: Ctx, acting: Who, _match: re.Match[str]) -> list[Reply]:
    """List the billing admins added, each with Remove, and offer to add one."""
    async with ctx.billing.db.session() as session:
        added = await teams.billing_admins(session, channel=ctx.actor.channel,
                                           team_id=acting.team)
    buttons = []
    for member in added[:20]:
        found = await acting.app.team_member(acting.team, member)
        buttons.append(Button(ctx.t("Remove {name}", name=found.name if found else member),
                              action=f"team:admins:rm:{member}"))
    text = ctx.t("The workspace's admins and owners manage billing, and so do the billing "
                 "admins added here.")
    if not added:
        text += " " + ctx.t("No billing admin was added yet.")
    return [Reply(text, title=ctx.t("Billing admins"), buttons=rows(
        Button(ctx.t("Add a billing admin"), action="team:admins:add"), *buttons,
        _plan_button(ctx)))]


@router.button("team:admins:add")
@team_action(admin=True)
async def ask_admin(ctx: Ctx, acting: Who, _match: re.Match[str]) -> list[Reply]:
    """Ask which member becomes a billing admin."""
    return [await _ask(ctx, PICK_ADMIN, ctx.t("Who should manage billing too?"), USER)]


@router.answer(PICK_ADMIN)
@team_action(admin=True)
async def add_admin(ctx: Ctx, acting: Who, text: str, _data: dict[str, object]) -> list[Reply]:
    """Make the member picked a billing admin and tell them by DM."""
    picked = await acting.app.team_member(acting.team, text)
    if picked is None or picked.role == NOBODY:
        return [Reply(ctx.t("Only members of this workspace can be billing admins (not guests "
                            "or bots). Nothing was changed."), buttons=rows(_plan_button(ctx)))]
    chat = f"{acting.team}:{picked.id}"
    async with ctx.billing.db.session() as session:
        added = await teams.add_billing_admin(session, channel=ctx.actor.channel,
                                              team_id=acting.team, user_id=picked.id,
                                              added_by=acting.member)
        if added:
            await enqueue(session, dedupe_key=f"{ADMIN_ADDED}:{chat}:{time.time_ns()}",
                          channel=ctx.actor.channel, user_id=chat, chat_id=chat,
                          kind=ADMIN_ADDED, params={"by": ctx.actor.name or acting.member})
    if not added:
        return [Reply(ctx.t("{name} is a billing admin already. Nothing was changed.",
                            name=picked.name), buttons=rows(_plan_button(ctx)))]
    return [Reply(ctx.t("{name} is now a billing admin.", name=picked.name),
                  buttons=rows(_plan_button(ctx)))]


@router.button(r"team:admins:rm:([A-Z0-9]{1,32})")
@team_action(admin=True)
async def remove_admin(ctx: Ctx, acting: Who, match: re.Match[str]) -> list[Reply]:
    """Stop a member being a billing admin (the workspace's own admins stay admins)."""
    member = match.group(1)
    async with ctx.billing.db.session() as session:
        removed = await teams.remove_billing_admin(session, channel=ctx.actor.channel,
                                                   team_id=acting.team, user_id=member)
    found = await acting.app.team_member(acting.team, member) if removed else None
    if not removed:
        return [Reply(ctx.t("That member is not a billing admin. Nothing was changed."),
                      buttons=rows(_plan_button(ctx)))]
    return [Reply(ctx.t("{name} is no longer a billing admin.",
                        name=found.name if found else member), edit=True,
                  buttons=rows(_plan_button(ctx)))]


def _channel_set(ctx: Ctx, params: dict[str, Any]) -> Reply:
    return Reply(ctx.t("{by} made this the billing channel: seat requests and seat changes "
                       "of the team plan appear here.", by=str(params.get("by"))))


def _admin_added(ctx: Ctx, params: dict[str, Any]) -> Reply:
    return Reply(ctx.t("{by} made you a billing admin: you can now manage the team plan with "
                       "/billing.", by=str(params.get("by"))), title=ctx.t("Billing admins"))


RENDERERS[CHANNEL_SET] = _channel_set
RENDERERS[ADMIN_ADDED] = _admin_added
