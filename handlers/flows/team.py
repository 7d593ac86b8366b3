"""Teams (SPEC §6b): `/billing` for a workspace's admins and members, the team plan, seats
(seat requests: handlers.flows.seat_requests).

Channel-neutral: who acts and whether they may is `handlers.flows.team_access`, asked afresh
on every action (a demoted admin loses it at once). Team ids come only from the actor, which
the chat app authenticated; nothing in a button's data names a team, so another workspace's
ids cannot be smuggled in.
"""

from __future__ import annotations

import re
from typing import Any

from babel.lists import format_list

from billing import team_intents, teams
from billing.card_links import card_link
from billing.errors import BillingError
from billing.links import redeem_token
from billing.seats import (
    BelowAssigned,
    SameSeats,
    SeatPreview,
    SeatsOutOfRange,
    preview_seats,
    start_team_checkout,
    team_overview,
)
from billing.state import clear, expect
from handlers.context import Ctx
from handlers.flows.team_access import (
    ADMIN,
    MEMBER,
    NOBODY,
    TeamApp,
    Who,
    no_plan,
    team_action,
)
from handlers.notices import RENDERERS
from handlers.problems import explain
from handlers.replies import Button, Reply, rows
from handlers.router import router

__all__ = ["ADMIN", "MEMBER", "NOBODY", "TeamApp"]
START_SEATS, CHANGE_SEATS = "team_start_seats", "team_seats"
_NUMBER = re.compile(r"\s*(\d{1,6})\s*")
ADMINS_NAMED = 5  # a member is told this many admins' names, then how many more


async def assigned_count(ctx: Ctx, team: str) -> int:
    """Return how many of the team's seats are assigned."""
    async with ctx.billing.db.session() as session:
        return await teams.seat_count(session, channel=ctx.actor.channel, team_id=team)


def _seat_problem(ctx: Ctx, error: BillingError) -> Reply | None:
    unchanged = ctx.t("Nothing was changed.")
    if isinstance(error, SeatsOutOfRange):
        return Reply(ctx.t("Please enter a number of seats from {low} to {high}.",
                           low=error.minimum, high=error.maximum) + " " + unchanged)
    if isinstance(error, BelowAssigned):
        return Reply(ctx.t("{assigned} seats are assigned: unassign some before going below "
                           "that.", assigned=error.assigned) + " " + unchanged)
    if isinstance(error, SameSeats):
        return Reply(ctx.t("The team already has that many seats.") + " " + unchanged)
    return None


def failed(ctx: Ctx, error: BillingError) -> list[Reply]:
    """Say why a seat change was refused."""
    return [_seat_problem(ctx, error) or explain(ctx, error)]


@router.command("billing")
async def billing(ctx: Ctx, args: str) -> list[Reply]:
    """Answer `/billing` (and `/billing connect <token>`) for the team's admins and members."""
    head, _, rest = args.partition(" ")
    if head.lower() == "connect":
        return await _connect(ctx, rest.strip())
    return await _dashboard(ctx)


@team_action(admin=False)
async def _dashboard(ctx: Ctx, acting: Who) -> list[Reply]:
    link = acting.link
    overview = (await team_overview(ctx.billing, customer_id=link.customer_id)
                if link is not None else None)
    if acting.role != ADMIN:
        return await _member_view(ctx, acting, has_plan=overview is not None)
    if overview is None:
        return [Reply(ctx.t("Your workspace has no team plan yet. Start one, or connect an "
                            "existing subscription with /billing connect followed by the code "
                            "you were given."),
                      title=ctx.t("Team plan"),
                      buttons=rows(Button(ctx.t("Start the team plan"), action="team:start")))]
    assigned = await assigned_count(ctx, acting.team)
    lines = [ctx.t("{plan}: {seats} seats purchased, {assigned} assigned.",
                   plan=overview.plan_name, seats=overview.seats, assigned=assigned)]
    if overview.current_period_end is not None:
        verb = (ctx.t("Ends on {day}.") if overview.cancel_at_period_end
                else ctx.t("Renews on {day}."))
        lines.append(verb.format(day=ctx.day(overview.current_period_end)))
    if overview.next_amount is not None:
        lines.append(ctx.t("Next invoice: {amount}.",
                           amount=ctx.money(overview.next_amount, overview.currency)))
    if overview.card is not None:
        lines.append(ctx.t("Card: {brand} •••• {last4}.", brand=overview.card.brand.title(),
                           last4=overview.card.last4))
    return [Reply("\n".join(lines), title=ctx.t("Team plan"), buttons=rows(
        Button(ctx.t("Add or remove seats"), action="team:seats"),
        Button(ctx.t("Assign a seat"), action="team:assign"),
        Button(ctx.t("Unassign a seat"), action="team:unassign"),
        Button(ctx.t("Update card"), action="team:card"),
        Button(ctx.t("Invoices"), action="team:inv"),
        Button(ctx.t("Billing channel"), action="team:channel"),
        Button(ctx.t("Billing admins"), action="team:admins"), per_row=2))]


@router.button("team:card")
@team_action(admin=True, linked=True)
async def team_card(ctx: Ctx, acting: Who, _match: re.Match[str]) -> list[Reply]:
    """Give an admin, privately, the button to Stripe's page for the team's card."""
    link = acting.linked
    # The card link names the team's link (user and chat), which GET /card checks again.
    url = card_link(ctx.billing, customer_id=link.customer_id, channel=link.channel,
                    user_id=link.user_id, chat_id=link.chat_id, locale=ctx.locale)
    return [Reply(ctx.t("Update the team's card on Stripe's secure page. The button works for "
                        "24 hours; only you see it."), private=True,
                  buttons=rows(Button(ctx.t("Update card"), url=url)))]


async def _admin_names(ctx: Ctx, acting: Who) -> str | None:
    """Name the team's admins (its own and the billing admins added), the first few of them
    and how many more; None when the app knows none."""
    async with ctx.billing.db.session() as session:
        added = await teams.billing_admins(session, channel=ctx.actor.channel,
                                           team_id=acting.team)
    admins = list(dict.fromkeys([*await acting.app.team_admins(acting.team), *added]))
    names = []
    for admin in admins[:ADMINS_NAMED]:
        found = await acting.app.team_member(acting.team, admin)
        names.append(found.name if found is not None else admin)
    if not names:
        return None
    if len(admins) > ADMINS_NAMED:
        names.append(ctx.t("{count} more", count=len(admins) - ADMINS_NAMED))
    return format_list(names, locale=ctx.locale)


async def _member_view(ctx: Ctx, acting: Who, *, has_plan: bool) -> list[Reply]:
    if not has_plan:
        text = ctx.t("Your workspace has no team plan yet. A workspace admin or owner can "
                     "start one with /billing.")
        names = await _admin_names(ctx, acting)
        if names:
            text += "\n" + ctx.t("Your workspace's admins: {names}.", names=names)
        return [Reply(text)]
    async with ctx.billing.db.session() as session:
        held = await teams.holds_seat(session, channel=ctx.actor.channel, team_id=acting.team,
                                      user_id=acting.member)
    if held:
        return [Reply(ctx.t("You hold a seat of your team's plan."), title=ctx.t("Team plan"))]
    return [Reply(ctx.t("You don't hold a seat of your team's plan yet."),
                  title=ctx.t("Team plan"),
                  buttons=rows(Button(ctx.t("Request a seat"), action="team:request")))]


@team_action(admin=True)
async def _connect(ctx: Ctx, acting: Who, token: str) -> list[Reply]:
    if not token:
        return [Reply(ctx.t("Add the code you were given: /billing connect followed by the "
                            "code."))]
    try:
        async with ctx.billing.db.session() as session:
            # The team, not the admin, is linked: every admin of it sees the same plan, and
            # notices go to the admin who connected it (their DM).
            await redeem_token(session, secret=ctx.billing.link_secret, token=token,
                               channel=ctx.actor.channel, user_id=teams.team_key(acting.team),
                               chat_id=ctx.actor.chat_id)
    except BillingError as error:
        return failed(ctx, error)
    return [Reply(ctx.t("Connected! Your workspace is now linked to its {business} "
                        "subscription.", business=ctx.billing.catalog.business.name),
                  buttons=rows(Button(ctx.t("Team plan"), action="team:plan")))]


@router.button("team:plan")
async def show_plan(ctx: Ctx, _match: re.Match[str]) -> list[Reply]:
    """Show the team plan again (the same as `/billing`)."""
    return await billing(ctx, "")


async def _ask_seats(ctx: Ctx, kind: str, text: str) -> list[Reply]:
    async with ctx.billing.db.session() as session:
        await expect(session, channel=ctx.actor.channel, user_id=ctx.actor.user_id, kind=kind)
    return [Reply(text, title=ctx.t("Seats"), expect_text=True)]


def _range(ctx: Ctx) -> str:
    return ctx.t("from {low} to {high}", low=ctx.billing.catalog.min_seats,
                 high=ctx.billing.catalog.max_seats)


@router.button("team:start")
@team_action(admin=True)
async def ask_start(ctx: Ctx, acting: Who, _match: re.Match[str]) -> list[Reply]:
    """Ask an admin of a workspace without a plan how many seats to start with."""
    link = acting.link
    if link is not None and await team_overview(ctx.billing, customer_id=link.customer_id):
        return [Reply(ctx.t("Your workspace already has a team plan. Nothing was changed."),
                      buttons=rows(Button(ctx.t("Team plan"), action="team:plan")))]
    return await _ask_seats(ctx, START_SEATS, ctx.t(
        "How many seats should the team plan start with ({range})?", range=_range(ctx)))


def _number(ctx: Ctx, text: str) -> int | None:
    found = _NUMBER.fullmatch(text)
    return int(found.group(1)) if found else None


def _not_a_number(ctx: Ctx) -> list[Reply]:
    return [Reply(ctx.t("That is not a number of seats. Please enter a whole number {range}. "
                        "Nothing was changed.", range=_range(ctx)), expect_text=True)]


@router.answer(START_SEATS)
@team_action(admin=True)
async def start_with(ctx: Ctx, acting: Who, text: str,
                     _data: dict[str, object]) -> list[Reply]:
    """Open a Checkout for the entered number of seats."""
    seats = _number(ctx, text)
    if seats is None:
        await _ask_seats(ctx, START_SEATS, "")
        return _not_a_number(ctx)
    link = acting.link
    try:
        url = await start_team_checkout(
            ctx.billing, team_id=acting.team, user_id=acting.member, seats=seats,
            locale=ctx.locale, customer_id=link.customer_id if link else None)
    except BillingError as error:
        return failed(ctx, error)
    return [Reply(ctx.t("{seats} seats: pay with Stripe to start the team plan.", seats=seats),
                  private=True, buttons=rows(Button(ctx.t("Pay with Stripe"), url=url)))]


@router.button("team:seats")
@team_action(admin=True, linked=True)
async def ask_seats(ctx: Ctx, acting: Who, _match: re.Match[str]) -> list[Reply]:
    """Ask an admin for the team's new number of seats."""
    overview = await team_overview(ctx.billing, customer_id=acting.customer)
    if overview is None:
        return no_plan(ctx)
    return await _ask_seats(ctx, CHANGE_SEATS, ctx.t(
        "The team has {seats} seats. How many should it have ({range})?",
        seats=overview.seats, range=_range(ctx)))


def preview_reply(ctx: Ctx, preview: SeatPreview) -> Reply:
    """Show a seat change's preview with Confirm (which carries its proration date)."""
    per = ctx.interval(preview.interval, preview.interval_count)
    then = ctx.money(preview.per_period, preview.currency)
    if preview.prorated >= 0:
        now = ctx.t("{amount} prorated on your next invoice", amount=ctx.money(
            preview.prorated, preview.currency))
    else:
        now = ctx.t("{amount} credited on your next invoice", amount=ctx.money(
            -preview.prorated, preview.currency))
    text = ctx.t("From {current} to {seats} seats: {now}, then {then} {per}.",
                 current=preview.current_seats, seats=preview.seats, now=now, then=then,
                 per=per)
    # The seats it has now go along: a change resumed after a crash tells them in its audit.
    action = (f"team:ok:{preview.seats}:{preview.proration_date}:{preview.prorated}:"
              f"{preview.current_seats}")
    return Reply(text, title=ctx.t("Seats"), buttons=rows(
        Button(ctx.t("Confirm"), action=action), Button(ctx.t("Keep as is"),
                                                        action="team:plan")))


@router.answer(CHANGE_SEATS)
@team_action(admin=True, linked=True)
async def preview(ctx: Ctx, acting: Who, text: str, _data: dict[str, object]) -> list[Reply]:
    """Preview the entered number of seats with Stripe's invoice preview."""
    seats = _number(ctx, text)
    if seats is None:
        await _ask_seats(ctx, CHANGE_SEATS, "")
        return _not_a_number(ctx)
    try:
        seen = await preview_seats(ctx.billing, customer_id=acting.customer,
                                   seats=seats, assigned=await assigned_count(ctx, acting.team))
    except BillingError as error:
        return failed(ctx, error)
    return [preview_reply(ctx, seen)]


@router.button(r"team:ok:(\d{1,6}):(\d{1,12}):(-?\d{1,12})(?::(\d{1,6}))?")
@team_action(admin=True, linked=True)
async def confirm(ctx: Ctx, acting: Who, match: re.Match[str]) -> list[Reply]:
    """Apply exactly the previewed seat change (a moved amount shows a fresh preview).

    The change is recorded first (billing.team_intents), with the audit line's numbers:
    a crash after the ack is resumed, and the same Confirm pressed twice names one intent.
    """
    seats, date, amount = (int(g) for g in match.groups()[:3])
    before = int(match.group(4)) if match.group(4) else None
    channel = ctx.actor.channel
    ref = f"seats:{acting.team}:{seats}:{date}:{amount}"
    async with ctx.billing.db.session() as session:
        await clear(session, channel=channel, user_id=ctx.actor.user_id)
        intent = await team_intents.record(
            session, channel=channel, team_id=acting.team, kind=team_intents.SEATS, ref=ref,
            params={"customer": acting.customer, "seats": seats, "proration_date": date,
                    "amount": amount, "before": before, "by": ctx.actor.name or acting.member,
                    "actor": acting.member, "locale": ctx.locale})
        earlier = await team_intents.named(session, ref) if intent is None else None
    if intent is None:  # the same Confirm again: the first one's outcome
        if earlier is not None and earlier.status == team_intents.DONE:
            return _seats_done(ctx, seats)
        return [Reply(ctx.t("That change is already under way. Nothing more was changed."))]
    settled = await team_intents.settle(ctx.billing, intent)
    if settled.status == team_intents.PENDING:
        return [Reply(ctx.t("Stripe did not answer in time. I will try again and tell you "
                            "how it went."))]
    if settled.error is not None:
        return failed(ctx, settled.error)
    if settled.preview is not None:
        return [Reply(ctx.t("The price changed since the preview. Here is the new one."),
                      edit=True), preview_reply(ctx, settled.preview)]
    return _seats_done(ctx, seats)


def _seats_done(ctx: Ctx, seats: int) -> list[Reply]:
    return [Reply(ctx.t("Done: the team now has {seats} seats.", seats=seats), edit=True,
                  buttons=rows(Button(ctx.t("Team plan"), action="team:plan")))]


def _team_welcome(ctx: Ctx, _params: dict[str, Any]) -> Reply:
    return Reply(ctx.t("Your workspace's team plan is active. Members can now ask for a "
                       "seat with /billing."), title=ctx.t("Team plan started"),
                 buttons=rows(Button(ctx.t("Team plan"), action="team:plan")))


RENDERERS["team_welcome"] = _team_welcome
