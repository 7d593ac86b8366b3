"""Pushed notices rendered for their recipient (SPEC §7)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from handlers import menus
from handlers.context import Ctx
from handlers.replies import Reply, rows


def _welcome(ctx: Ctx, params: dict[str, Any]) -> Reply:
    business = ctx.billing.catalog.business
    lines = []
    if params.get("plan") and params.get("currency"):
        price = ctx.money(int(params["amount"]), str(params["currency"]))
        lines.append(ctx.t("You are subscribed to {plan} ({price} {interval}).",
                           plan=params["plan"], price=price,
                           interval=ctx.interval(str(params.get("interval", "month")))))
    if params.get("renews"):
        renews = datetime.fromtimestamp(int(params["renews"]), UTC)
        lines.append(ctx.t("It renews on {date}.", date=ctx.day(renews)))
    return Reply("\n".join(lines) or ctx.t("Your subscription is active."),
                 title=ctx.t("Welcome to {business}!", business=business.name),
                 buttons=rows(menus.my_plan(ctx)), image_url=business.logo_url, private=True)


RENDERERS = {"welcome": _welcome}


def render_notice(ctx: Ctx, kind: str, params: dict[str, Any]) -> Reply:
    """Render a notice of a known kind."""
    return RENDERERS[kind](ctx, params)
