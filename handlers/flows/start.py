"""Start and account linking (SPEC §6.1)."""

from __future__ import annotations

import re

from billing.links import find_link, redeem_token
from billing.state import expect
from handlers import menus
from handlers.apps import ChatApp, PlainApp
from handlers.context import Ctx
from handlers.replies import Reply, rows
from handlers.router import router


def _app(ctx: Ctx) -> ChatApp:
    return ctx.app or PlainApp(ctx.actor.channel)


async def _link(ctx: Ctx, token: str) -> list[Reply]:
    actor = ctx.actor
    async with ctx.billing.db.session() as session:
        await redeem_token(session, secret=ctx.billing.link_secret, token=token,
                           channel=actor.channel, user_id=actor.user_id, chat_id=actor.chat_id)
    return [Reply(ctx.t("Connected! This chat is now linked to your {business} account.",
                        business=ctx.billing.catalog.business.name),
                  buttons=rows(menus.my_plan(ctx), menus.invoices(ctx)))]


@router.command("start")
async def start(ctx: Ctx, args: str) -> list[Reply]:
    """Greet the user with the business name; link the chat when a token comes along."""
    if args:
        return await _link(ctx, args.split()[0])
    actor = ctx.actor
    async with ctx.billing.db.session() as session:
        link = await find_link(session, channel=actor.channel, user_id=actor.user_id)
    business = ctx.billing.catalog.business.name
    if link is not None:
        return [Reply(ctx.t("What would you like to do?"),
                      title=ctx.t("Welcome back to {business}", business=business),
                      buttons=rows(menus.my_plan(ctx), menus.invoices(ctx),
                                   menus.update_card(ctx)))]
    return [Reply(ctx.t("Here you can subscribe, see your plan and invoices, and update "
                        "your card. Already a customer? Connect your subscription."),
                  title=ctx.t("Welcome to {business}", business=business),
                  buttons=rows(menus.see_plans(ctx), menus.connect(ctx)))]


@router.button("connect")
async def ask_link_code(ctx: Ctx, _match: re.Match[str]) -> list[Reply]:
    """Explain how to connect an existing subscription and wait for the link or code."""
    async with ctx.billing.db.session() as session:
        await expect(session, channel=ctx.actor.channel, user_id=ctx.actor.user_id,
                     kind="link_token")
    return [Reply(ctx.t("Open “Connect {app}” in your {business} account and tap the link, "
                        "or paste the link here.", app=_app(ctx).label,
                        business=ctx.billing.catalog.business.name), expect_text=True)]


@router.answer("link_token")
async def link_from_text(ctx: Ctx, text: str, _data: dict[str, object]) -> list[Reply]:
    """Link the chat with a pasted deep link or code."""
    token = _app(ctx).token_in(text)
    return await _link(ctx, token if token is not None else text.strip())
