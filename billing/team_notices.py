"""Team notices (SPEC §7): a notice for a team's Stripe customer goes to every billing admin's
DM, one notice each, under its own dedupe key.

A team is linked as one `ChatLink` whose user is the team itself (`billing.teams.team_key`)
and whose chat is the DM of the admin who linked it. The writers of notices (the event
handlers of `billing.notice_events`, the scans of `billing.reminders`) find that link among
the customer's recipients; here it becomes one notice per billing admin, of the team's own
kind (`team_payment_failed`, …, whose buttons act for the team: `handlers.team_notices`),
each keyed `<kind>:<object>:<period or event>@<channel>:<team>:<admin>`, in the transaction
of the state change, and sent by the outbox with the channel's pacing.

Who the admins are is the chat app's to say (a `TeamRoster` it registers on `Billing`: for
Slack, the workspace's admins and owners and the installer, asked of Slack). Without one, or
when the app cannot tell just now, the admin who linked the team is told: a payment problem
is never dropped for want of a roster.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from billing.prefs import remember_locale, remember_zone
from billing.teams import team_key

log = logging.getLogger(__name__)
TEAM_PREFIX = team_key("")
# The customer notices a team gets, as the team's kinds; the rest (a plan changed, ended, …)
# speak of a personal subscription and have no team version, so teams do not get them.
TEAM_KINDS = {
    "payment_failed": "team_payment_failed",
    "action_required": "team_action_required",
    "payment_received": "team_payment_received",
    "renewal_reminder": "team_renewal_reminder",
    "card_expiring": "team_card_expiring",
    "card_updated": "team_card_updated",
}


@dataclass(frozen=True)
class TeamAdmin:
    """A billing admin of a team, as the chat app knows them: their member id, language
    (one Portier speaks, or None) and time zone."""

    member_id: str
    locale: str | None = None
    zone: str | None = None


class TeamRoster(Protocol):
    """A team chat app's answer to "who are this team's billing admins right now"."""

    async def __call__(self, team_id: str) -> Sequence[TeamAdmin]:
        """Return the team's billing admins (raise when the app cannot tell now)."""
        ...


def team_of(user_id: str) -> str | None:
    """Return the team a link's user id names ("team:T…"), or None for a person."""
    return user_id[len(TEAM_PREFIX):] if user_id.startswith(TEAM_PREFIX) else None


def admin_chat(team_id: str, member_id: str) -> str:
    """Return a team member's user and chat id in the channel ("T…:U…", their DM)."""
    return f"{team_id}:{member_id}"


async def admins_of(rosters: Mapping[str, TeamRoster] | None, channel: str, team_id: str,
                    linker_chat: str) -> list[TeamAdmin]:
    """Return who gets the team's notices: the roster's admins, else the linking admin."""
    roster = (rosters or {}).get(channel)
    if roster is not None:
        try:
            found = list(await roster(team_id))
        except Exception as error:  # noqa: BLE001 - the chat app is away: the linker is told
            log.warning("team admins of %s unknown (%s): telling the linking admin", team_id,
                        type(error).__name__)
        else:
            if found:
                return found
    team, _, member = linker_chat.partition(":")
    return [TeamAdmin(member_id=member)] if team == team_id and member else []


class Fanout:
    """Turns the team recipients of one write (a webhook's notices, a scan) into their
    admins' notices, asking the roster once per team."""

    def __init__(self, session: AsyncSession, rosters: Mapping[str, TeamRoster] | None) -> None:
        self.session = session
        self.rosters = rosters
        self._admins: dict[tuple[str, str], list[TeamAdmin]] = {}

    async def admins(self, channel: str, team_id: str, linker_chat: str) -> list[TeamAdmin]:
        """Return the team's admins (asked once per write) and remember their languages and
        time zones, so that each admin's copy is rendered in theirs."""
        key = (channel, team_id)
        if key not in self._admins:
            found = await admins_of(self.rosters, channel, team_id, linker_chat)
            for admin in found:
                user = admin_chat(team_id, admin.member_id)
                if admin.locale:
                    await remember_locale(self.session, channel=channel, user_id=user,
                                          locale=admin.locale)
                if admin.zone:
                    await remember_zone(self.session, channel=channel, user_id=user,
                                        zone=admin.zone)
            self._admins[key] = found
        return self._admins[key]

    async def rows(self, rows: Iterable[dict[str, Any]], *,
                   send_time: Callable[[str, str | None], datetime]) -> list[dict[str, Any]]:
        """Return notice rows (dicts of Notice columns) with each team's row replaced by one
        row per admin (kinds without a team version dropped); `send_time(kind, zone)` says
        when an admin's copy may go out (their quiet hours)."""
        out: list[dict[str, Any]] = []
        for row in rows:
            team = team_of(str(row["user_id"]))
            if team is None:
                out.append(row)
                continue
            kind = TEAM_KINDS.get(str(row["kind"]))
            if kind is None:
                continue
            key = str(row["dedupe_key"]).rpartition("@")[0]
            for admin in await self.admins(str(row["channel"]), team, str(row["chat_id"])):
                chat = admin_chat(team, admin.member_id)
                out.append(row | {
                    "dedupe_key": f"{key}@{row['channel']}:{chat}", "user_id": chat,
                    "chat_id": chat, "kind": kind, "params": dict(row["params"]) | {
                        "team": team},
                    "send_after": send_time(kind, admin.zone)})
        return out
