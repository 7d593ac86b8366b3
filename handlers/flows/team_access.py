"""Who acts in a team (SPEC §6b), decided afresh on every action, and the refusals.

A team chat app (Slack) registers a ChatApp that is also a `TeamApp`: it tells an actor's
team and role as the app says right now (a demoted workspace admin loses it at once), finds
the member or conversation an admin picked, and lists the team's own admins. Billing admins
that an admin added are Portier's own record and count as admins too. Team ids come only
from the actor, which the chat app authenticated; a button's data never names a team.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Concatenate, ParamSpec, Protocol, runtime_checkable

from billing import teams
from billing.errors import NotLinked
from billing.links import Link, find_link
from handlers.context import Actor, Ctx
from handlers.replies import Reply

ADMIN, MEMBER, NOBODY = "admin", "member", "nobody"
P = ParamSpec("P")


@dataclass(frozen=True)
class TeamMember:
    """A member of a team as its chat app describes them now."""

    id: str
    name: str
    role: str  # ADMIN, MEMBER or NOBODY (guests, bots, deactivated)


@runtime_checkable
class TeamApp(Protocol):
    """A chat app whose users belong to teams (workspaces)."""

    def team_of(self, actor: Actor) -> tuple[str, str]:
        """Return the actor's team id and their member id within it."""
        ...

    async def team_role(self, actor: Actor) -> str:
        """Return "admin", "member" or "nobody" (guests, bots), as the app says right now."""
        ...

    async def team_member(self, team: str, picked: str) -> TeamMember | None:
        """Return the member of the team picked (or typed), or None if it names nobody in it."""
        ...

    async def team_conversation(self, team: str, picked: str) -> str | None:
        """Return the team's conversation picked (or typed) if the app can post in it."""
        ...

    async def team_admins(self, team: str) -> list[str]:
        """Return the team's own admins (workspace admins and owners, the installer)."""
        ...


@dataclass(frozen=True)
class Who:
    """The acting member: their team, id, role right now, and the team's link (if any)."""

    app: TeamApp
    team: str
    member: str
    role: str
    link: Link | None

    @property
    def linked(self) -> Link:
        """Return the team's link (`team_action(linked=True)` made sure of it)."""
        if self.link is None:
            raise NotLinked("team")
        return self.link

    @property
    def customer(self) -> str:
        """Return the team's Stripe customer."""
        return self.linked.customer_id


async def who(ctx: Ctx) -> Who | None:
    """Return who acts, or None outside a team chat app; a member an admin made a billing
    admin acts as an admin."""
    app = ctx.app
    if not isinstance(app, TeamApp):
        return None
    team, member = app.team_of(ctx.actor)
    role = await app.team_role(ctx.actor)
    async with ctx.billing.db.session() as session:
        if role == MEMBER and await teams.is_billing_admin(
                session, channel=ctx.actor.channel, team_id=team, user_id=member):
            role = ADMIN
        link = await find_link(session, channel=ctx.actor.channel,
                               user_id=teams.team_key(team))
    return Who(app=app, team=team, member=member, role=role, link=link)


def unknown(ctx: Ctx) -> list[Reply]:
    """Answer as for an unknown command (a team command outside a team chat app)."""
    return [Reply(ctx.t("I don't know that command. /help lists what I can do."))]


def admins_only(ctx: Ctx) -> list[Reply]:
    """Refuse a member (or anyone else) an admin's action."""
    return [Reply(ctx.t("Only the workspace's admins and owners manage billing. "
                        "Nothing was changed."))]


def not_a_member(ctx: Ctx) -> list[Reply]:
    """Refuse a guest or a bot."""
    return [Reply(ctx.t("Billing is for the workspace's members. Nothing was changed."))]


def no_plan(ctx: Ctx) -> list[Reply]:
    """Say that the team has no plan to act on."""
    return [Reply(ctx.t("Your workspace has no team plan yet. Nothing was changed."))]


Handler = Callable[Concatenate[Ctx, P], Awaitable[list[Reply]]]
TeamHandler = Callable[Concatenate[Ctx, Who, P], Awaitable[list[Reply]]]


def team_action(*, admin: bool, linked: bool = False
                ) -> Callable[[TeamHandler[P]], Handler[P]]:
    """Run a handler only for the team's members (admins, with `admin`), and with `linked`
    only once the team is linked to its plan; refuse anyone else, changing nothing."""
    def decorate(handler: TeamHandler[P]) -> Handler[P]:
        @functools.wraps(handler)
        async def run(ctx: Ctx, /, *args: P.args, **kwargs: P.kwargs) -> list[Reply]:
            acting = await who(ctx)
            if acting is None:
                return unknown(ctx)
            if admin and acting.role != ADMIN:
                return admins_only(ctx)
            if acting.role == NOBODY:
                return not_a_member(ctx)
            if linked and acting.link is None:
                return no_plan(ctx)
            return await handler(ctx, acting, *args, **kwargs)
        return run
    return decorate
