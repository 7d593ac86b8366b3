"""Audit lines: every seat change told once in the team's billing channel (SPEC §7).

Written in the transaction of the change it tells, as a notice: the outbox delivers it with
Slack's pacing, and a crash after the change still tells it.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from billing.team_intents import SEAT_AUDIT, audit_line
from handlers.context import Ctx
from handlers.flows.team_access import Who
from handlers.notices import RENDERERS
from handlers.replies import Reply


async def audit(session: AsyncSession, ctx: Ctx, acting: Who, change: str, *,
                member: str | None = None, before: int | None = None,
                after: int | None = None, amount: int | None = None,
                currency: str | None = None) -> bool:
    """Queue the audit line of a seat change ("seats", "assigned", "unassigned", "approved")
    for the team's billing channel; return False when the team has none."""
    params: dict[str, Any] = {"change": change, "by": ctx.actor.name or acting.member,
                              "member": member, "before": before, "after": after,
                              "amount": amount, "currency": currency}
    return await audit_line(session, channel=ctx.actor.channel, team_id=acting.team,
                            key=str(time.time_ns()), params=params)


def _signed(ctx: Ctx, amount: int, currency: str) -> str:
    sign = "+" if amount >= 0 else "−"
    return sign + ctx.money(abs(amount), currency)


def _seats(ctx: Ctx, params: dict[str, Any], by: str) -> str:
    before, after = int(params["before"]), int(params["after"])
    count = abs(after - before)
    if after > before:
        line = (ctx.t("{by} added a seat ({before} → {after})", by=by, before=before,
                      after=after) if count == 1 else
                ctx.t("{by} added {count} seats ({before} → {after})", by=by, count=count,
                      before=before, after=after))
    else:
        line = (ctx.t("{by} removed a seat ({before} → {after})", by=by, before=before,
                      after=after) if count == 1 else
                ctx.t("{by} removed {count} seats ({before} → {after})", by=by, count=count,
                      before=before, after=after))
    if params.get("amount") is not None and params.get("currency"):
        line += " — " + ctx.t("next invoice {amount}", amount=_signed(
            ctx, int(params["amount"]), str(params["currency"])))
    return line + "."


def _seat_audit(ctx: Ctx, params: dict[str, Any]) -> Reply:
    by, member = str(params.get("by") or ""), str(params.get("member") or "")
    change = params.get("change")
    if change == "assigned":
        text = ctx.t("{by} assigned a seat to {member}.", by=by, member=member)
    elif change == "unassigned":
        text = ctx.t("{by} took back the seat of {member}.", by=by, member=member)
    elif change == "approved":
        text = ctx.t("{by} approved the seat request of {member}.", by=by, member=member)
        if params.get("before") is not None and params.get("after") is not None:
            text += " " + _seats(ctx, params, by)
    else:
        text = _seats(ctx, params, by)
    return Reply(text)


RENDERERS[SEAT_AUDIT] = _seat_audit
