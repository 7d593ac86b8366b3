"""`/help`: what the bot can do."""

from __future__ import annotations

import re

from handlers.context import Ctx
from handlers.replies import Reply
from handlers.router import router


@router.command("help", private=False)
async def show_help(ctx: Ctx, _args: str) -> list[Reply]:
    """List the commands, and where to get human help."""
    from handlers.portal import ADMIN_COMMANDS, COMMANDS  # here: the portal imports this flow

    listed = COMMANDS + ADMIN_COMMANDS if ctx.admin else COMMANDS
    lines = [f"/{name} — {ctx.t(text)}" for name, text in listed if name in router.commands]
    support = ctx.billing.catalog.business.support_url
    if support:
        lines.append("")
        lines.append(ctx.t("Need a person? {url}", url=support))
    return [Reply("\n".join(lines), title=ctx.t("What I can do"))]


@router.button("help", private=False)
async def help_button(ctx: Ctx, _match: re.Match[str]) -> list[Reply]:
    """Show the help from a button."""
    return await show_help(ctx, "")
