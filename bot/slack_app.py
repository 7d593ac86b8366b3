"""Slack as handlers see it: a team chat app (handlers.flows.team_access.TeamApp) whose
answers come from Slack's Web API, asked afresh on every action.

Roles come from users.info (`is_admin`, `is_owner`, `is_primary_owner`; guests, bots and
deactivated users are nobody: SPEC §6b), the installer counts as an admin, and a member or
channel an admin picked is looked up in the actor's own workspace, so another workspace's
ids name nobody.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.slack_errors import error_code
from handlers.context import Actor
from handlers.flows.team_access import ADMIN, MEMBER, NOBODY, TeamMember

log = logging.getLogger(__name__)
CHANNEL = "slack"
_ID = re.compile(r"^[A-Z0-9]{1,32}$")  # team, user and channel ids: T…, U…/W…, C…/D…/G…
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MENTION = re.compile(r"^<[@#]([A-Z0-9]{1,32})(?:\|[^>]*)?>$")  # <@U…|name>, <#C…|name>


class SlackApp:
    """Slack as handlers see it: a team chat app with no links of its own."""

    name = CHANNEL
    label = "Slack"

    def __init__(self, users: Callable[[str, str], Any],
                 installer: Callable[[str], Any] | None = None, *,
                 admins: Callable[[str], Any] | None = None,
                 conversation: Callable[[str, str], Any] | None = None,
                 directory: Callable[[str], Any] | None = None) -> None:
        self._users = users  # (team, user) -> awaitable users.info user object
        self._installer = installer  # team -> awaitable id of who installed the app
        self._admins = admins  # team -> awaitable ids of its billing admins (the roster)
        self._conversation = conversation  # (team, id) -> awaitable conversations.info
        self._directory = directory  # team -> awaitable users.list members (typed names)

    def private_chat_url(self) -> str | None:
        """Return no URL: the app's messages tab is found in Slack itself."""
        return None

    def link_url(self, token: str) -> str | None:
        """Return no URL: a workspace admin types `/billing connect <token>`."""
        return None

    def link_command(self, token: str) -> str | None:
        """Return the command a workspace admin types: `/billing connect <token>`."""
        return connect_command(token)

    def token_in(self, text: str) -> str | None:
        """Return the token of `connect <token>` or of a bare pasted token."""
        words = text.strip().split()
        token = words[-1] if words else ""
        return token if _TOKEN.fullmatch(token) else None

    async def language_chosen(self, actor: Actor, locale: str) -> None:
        """Do nothing more: replies follow the chosen language."""
        return None

    def team_of(self, actor: Actor) -> tuple[str, str]:
        """Return the team and member ids of a Slack actor ("T…:U…")."""
        team, _, member = actor.user_id.partition(":")
        return team, member

    async def team_role(self, actor: Actor) -> str:
        """Ask Slack now who the actor is: an admin or owner, a member, or neither."""
        team, member = self.team_of(actor)
        try:
            user = await self._users(team, member)
        except SlackApiError as error:
            log.info("users.info failed: %s", error_code(error))
            return NOBODY
        return await self._role(team, member, user)

    async def _role(self, team: str, member: str, user: dict[str, Any]) -> str:
        role = role_of(user)
        if role == MEMBER and self._installer is not None:  # the installer is an admin too
            if member == await self._installer(team):
                return ADMIN
        return role

    async def team_member(self, team: str, picked: str) -> TeamMember | None:
        """Return the workspace's member picked (users_select's id, or a typed id or
        mention), as users.info has them now; None for anyone not of this workspace."""
        member = _picked_id(picked)
        if member is None or member[0] not in "UW":
            member = await self._named(team, picked)
        if member is None:
            return None
        try:
            user = await self._users(team, member)
        except SlackApiError as error:
            log.info("users.info failed: %s", error_code(error))
            return None
        if user.get("team_id") != team:  # another workspace's user is nobody here
            return None
        name = user.get("real_name") or user.get("name") or member
        return TeamMember(id=member, name=str(name)[:64],
                          role=await self._role(team, member, user))

    async def _named(self, team: str, typed: str) -> str | None:
        """Return the id of the one member whose name, display name or real name was typed
        (where no picker was at hand), or None when none or several have it."""
        wanted = typed.strip().lstrip("@").casefold()
        if self._directory is None or not wanted:
            return None
        try:
            members = await self._directory(team)
        except SlackApiError as error:
            log.info("users.list failed: %s", error_code(error))
            return None
        found = {str(u.get("id")) for u in members if wanted in (
            str(u.get("name") or "").casefold(), str(u.get("real_name") or "").casefold(),
            str((u.get("profile") or {}).get("display_name") or "").casefold())}
        return next(iter(found)) if len(found) == 1 else None

    async def team_conversation(self, team: str, picked: str) -> str | None:
        """Return the channel picked if it is the workspace's and the app is in it."""
        channel = _picked_id(picked)
        if channel is None or channel[0] not in "CG":
            return None
        if self._conversation is None:
            return channel
        try:
            found = await self._conversation(team, channel)
        except SlackApiError as error:  # another workspace's channel: channel_not_found
            log.info("conversations.info failed: %s", error_code(error))
            return None
        if found.get("is_archived") or found.get("is_im") or not found.get("is_member"):
            return None
        return channel

    async def team_admins(self, team: str) -> list[str]:
        """Return the workspace's billing admins: its admins and owners (users.list), the
        installer and those added (the roster of team notices), else just the installer."""
        if self._admins is not None:
            try:
                return list(await self._admins(team))
            except SlackApiError as error:
                log.info("users.list failed: %s", error_code(error))
        installer = await self._installer(team) if self._installer is not None else None
        return [installer] if installer else []

    async def team_zone(self, actor: Actor) -> str | None:
        """Return the actor's time zone as Slack has it (users.info `tz`)."""
        team, member = self.team_of(actor)
        try:
            zone = (await self._users(team, member)).get("tz")
        except SlackApiError:
            return None
        return zone if isinstance(zone, str) else None


def connect_command(token: str) -> str:
    """Return the command a workspace admin types to link the workspace with a token."""
    return f"/billing connect {token}"


def role_of(user: dict[str, Any]) -> str:
    """Return a Slack user's billing role from users.info (SPEC §6b)."""
    if (user.get("deleted") or user.get("is_bot") or user.get("is_restricted")
            or user.get("is_ultra_restricted") or user.get("is_app_user")):
        return NOBODY
    if user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"):
        return ADMIN
    return MEMBER


def clean_id(value: Any) -> str | None:
    """Return a Slack id (team, user, channel) as sent, or None for anything else."""
    return value if isinstance(value, str) and _ID.match(value) else None


def _picked_id(picked: str) -> str | None:
    """Return the id of a picked or typed user or channel ("U…", "<@U…|ann>", "#C…")."""
    text = picked.strip()
    mention = _MENTION.match(text)
    return clean_id(mention.group(1) if mention else text.lstrip("@#"))
