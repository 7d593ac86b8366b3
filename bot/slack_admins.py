"""Who a Slack team's notices go to: its billing admins, asked of Slack when a team's notice
is expanded into its admins' copies (billing.notices.expand_team_notices calls the roster
registered under "slack"), which happens after the notice's write transaction, never inside
one: these Web API calls take long and may be retried or rate limited (billing.team_notices).

A workspace's admins and owners are found in `users.list` (cursor-paginated, with each
user's `locale` when `include_locale` is set, and their `tz`:
docs.slack.dev/reference/methods/users.list), the member who installed the app in the OAuth
installation, and the members an admin made billing admins in Portier's database. Slack's
member list is kept for a minute, so that a burst of notices (a scan, a retried invoice) asks
Slack once per team; Portier's own record (installer, added billing admins) is read each time,
so adding or removing a billing admin counts at once. Actions never use the list (they ask
`users.info` afresh).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from billing.team_notices import TeamAdmin
from handlers.i18n import supported

PAGE = 200  # users.list: Slack recommends no more than 200 a page
TTL = 60.0  # seconds an answer is reused for notices


class SlackRoster:
    """The billing admins of a workspace, for its notices."""

    def __init__(self, client_for: Callable[[str], Awaitable[AsyncWebClient]],
                 is_admin: Callable[[dict[str, Any]], bool],
                 installer: Callable[[str], Awaitable[str | None]] | None = None,
                 extra: Callable[[str], Awaitable[list[str]]] | None = None) -> None:
        self._client_for = client_for  # team -> a client with the workspace's bot token
        self._is_admin = is_admin  # a users.list member -> workspace admin or owner?
        self._installer = installer
        self._extra = extra  # team -> members made billing admins in Portier
        self._kept: dict[str, tuple[float, list[dict[str, Any]]]] = {}

    async def __call__(self, team_id: str) -> list[TeamAdmin]:
        """Return the workspace's billing admins with their language and time zone."""
        kept = self._kept.get(team_id)
        if kept is None or time.monotonic() - kept[0] >= TTL:
            members = await active_members(await self._client_for(team_id), team_id)
            kept = self._kept[team_id] = (time.monotonic(), members)
        return admins_among(kept[1], is_admin=self._is_admin, also=await self._also(team_id))

    async def _also(self, team_id: str) -> set[str]:
        also: set[str] = set()
        if self._installer is not None and (installer := await self._installer(team_id)):
            also.add(installer)
        if self._extra is not None:
            also.update(await self._extra(team_id))
        return also


def _active(user: dict[str, Any], team_id: str) -> bool:
    return (not user.get("deleted") and not user.get("is_bot") and not user.get("is_app_user")
            and not user.get("is_restricted") and not user.get("is_ultra_restricted")
            and user.get("team_id") in (None, team_id))


async def active_members(client: AsyncWebClient, team_id: str, *,
                         page_size: int = PAGE) -> list[dict[str, Any]]:
    """Return the team's active members (not deactivated, not guests or bots) from
    users.list, page by page, with their locales, in users.list's order."""
    members: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await client.users_list(limit=page_size, include_locale=True, cursor=cursor)
        members += [dict(u) for u in page.get("members") or []
                    if isinstance(u, dict) and _active(u, team_id)]
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            return members


def admins_among(members: list[dict[str, Any]], *, is_admin: Callable[[dict[str, Any]], bool],
                 also: set[str]) -> list[TeamAdmin]:
    """Return the workspace admins and owners among the members, and those in `also`."""
    admins: list[TeamAdmin] = []
    for user in members:
        if is_admin(user) or user.get("id") in also:
            locale, zone = user.get("locale"), user.get("tz")
            admins.append(TeamAdmin(
                member_id=str(user["id"]),
                locale=supported(locale) if isinstance(locale, str) else None,
                zone=zone if isinstance(zone, str) else None))
    return admins


async def billing_admins(client: AsyncWebClient, team_id: str, *,
                         is_admin: Callable[[dict[str, Any]], bool],
                         also: set[str], page_size: int = PAGE) -> list[TeamAdmin]:
    """Return the team's admins and owners from users.list, and the members in `also` who are
    still active members (not deactivated, not guests), in users.list's order."""
    members = await active_members(client, team_id, page_size=page_size)
    return admins_among(members, is_admin=is_admin, also=also)
