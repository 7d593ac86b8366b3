"""Forget me (SPEC §6.9)."""

from __future__ import annotations

import re

from billing.links import forget
from handlers.context import Ctx
from handlers.replies import Button, Reply, rows
from handlers.router import router


@router.command("forget", private=False)
async def ask_forget(ctx: Ctx, _args: str) -> list[Reply]:
    """Ask the user to confirm forgetting this chat."""
    return [Reply(ctx.t("I will delete this chat's link to your account, your settings and "
                        "any messages waiting for you. Your subscription itself stays as it "
                        "is."),
                  title=ctx.t("Forget this chat?"),
                  buttons=rows(Button(ctx.t("Yes, forget me"), action="forget:yes"),
                               Button(ctx.t("Keep everything"), action="forget:no")))]


@router.button("forget:(yes|no)", private=False)
async def confirm_forget(ctx: Ctx, match: re.Match[str]) -> list[Reply]:
    """Forget the chat user after they confirmed, or keep everything."""
    if match.group(1) == "no":
        return [Reply(ctx.t("Kept. Nothing was changed."), edit=True)]
    async with ctx.billing.db.session() as session:
        await forget(session, channel=ctx.actor.channel, user_id=ctx.actor.user_id)
    return [Reply(ctx.t("Done: I have forgotten this chat. Send /start to begin again."),
                  edit=True)]
