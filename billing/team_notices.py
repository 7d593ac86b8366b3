"""Team notices (SPEC §7): a notice for a team's Stripe customer goes to every billing admin's
DM, one notice each, under its own dedupe key.

A team is linked as one `ChatLink` whose user is the team itself (`billing.teams.team_key`)
and whose chat is the DM of the admin who linked it. The writers of notices (the event
handlers of `billing.notice_events`, the scans of `billing.reminders`, the team welcome of
`billing.team_events`) find that link among the customer's recipients.

Who the admins are is the chat app's to say (a `TeamRoster` it registers on `Billing`: for
Slack, the workspace's admins and owners and the installer, asked of Slack's Web API). That
question takes hundreds of milliseconds, is retried and rate limited (429), so it is never
asked inside a write transaction: on SQLite that would stall every other writer, on
PostgreSQL hold the event's row lock and the rows written so far. A team's notice is
therefore written in two steps:

1. In the transaction of the state change, the team's recipient row becomes ONE row of the
   team's kind (`team_payment_failed`, …, whose buttons act for the team:
   `handlers.team_notices`), status `TO_EXPAND`, keyed like any recipient's copy
   (`<kind>:<object>:<period or event>@<channel>:team:<team>`), so a retried event or a
   second scan finds its key taken and writes nothing. The outbox never sends it.
2. After that transaction, `billing.notices.expand_team_notices` reads the waiting rows,
   asks the roster (no transaction open), then in one short transaction claims each row
   (`TO_EXPAND` → `EXPANDED`, a conditional UPDATE: a concurrent expander claims nothing)
   and adds one copy per admin, keyed `<key>@<channel>:<team>:<admin>`, with the admin's
   language and time zone remembered and their quiet hours applied.

Why two steps rather than asking the roster before the transaction opens: which teams an
event concerns is known only once its handlers re-read Stripe inside the transaction (the
payload is never trusted), so a roster warmed beforehand could miss, and a miss would either
call Slack inside the transaction after all or drop admins. The two steps are safe under
crashes and retries without such guessing: a crash before step 1 commits leaves nothing; a
crash after it leaves the row `TO_EXPAND`, which the next worker pass (`process_pending`, every
few seconds) or scan expands; a crash during step 2 rolls its claim back with its copies; two
expanders at once add each copy once (the claim, and the copies' unique dedupe keys).

Without a roster, or when the app cannot tell just now, the admin who linked the team is
told: a payment problem is never dropped for want of a roster.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from billing.teams import team_key

log = logging.getLogger(__name__)
TEAM_PREFIX = team_key("")
# The customer notices a team gets, as the team's kinds; the rest (a plan changed, ended, …)
# speak of a personal subscription and have no team version, so teams do not get them. The
# team welcome (billing.team_events) is a team's notice from the start.
TEAM_KINDS = {
    "payment_failed": "team_payment_failed",
    "action_required": "team_action_required",
    "payment_received": "team_payment_received",
    "renewal_reminder": "team_renewal_reminder",
    "card_expiring": "team_card_expiring",
    "card_updated": "team_card_updated",
    "seats_changed": "team_seats_changed",  # written for teams only (notice_events)
    "team_welcome": "team_welcome",
}
# A seat change made outside Portier, as one line in the team's billing channel (a change
# Portier made has its audit line there instead: handlers.flows.audit).
SEATS_LINE = "team_seats_line"
# A team's notice waiting for its admins' copies, and one that has them (neither is sent).
TO_EXPAND = "to_expand"
EXPANDED = "expanded"
QUIET = "_quiet_hours"  # a waiting row's params: the quiet hours its copies follow


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
    """Return who gets the team's notices: the roster's admins, else the linking admin.
    Never call this inside a write transaction (see the module's docstring)."""
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


def for_teams(rows: Iterable[dict[str, Any]], *, quiet_hours: str | None,
              now: datetime) -> list[dict[str, Any]]:
    """Return notice rows (dicts of Notice columns) with each team's row made the team's one
    waiting row (step 1; kinds without a team version dropped). `quiet_hours` and `now` are
    what the admins' copies will be timed by."""
    out: list[dict[str, Any]] = []
    for row in rows:
        team = team_of(str(row["user_id"]))
        if team is None:
            out.append(row)
            continue
        kind = TEAM_KINDS.get(str(row["kind"]))
        if kind is None:
            continue
        out.append(row | {"kind": kind, "status": TO_EXPAND, "send_after": now,
                          "params": dict(row["params"]) | {"team": team, QUIET: quiet_hours}})
    return out


def copy_for(waiting: Mapping[str, Any], admin: TeamAdmin, send_after: datetime
             ) -> dict[str, Any]:
    """Return one admin's copy (a Notice row) of a team's waiting row (step 2)."""
    team = str(waiting["params"]["team"])
    chat = admin_chat(team, admin.member_id)
    key = str(waiting["dedupe_key"]).rpartition("@")[0]
    params = {k: v for k, v in dict(waiting["params"]).items() if k != QUIET}
    return {"dedupe_key": f"{key}@{waiting['channel']}:{chat}", "channel": waiting["channel"],
            "user_id": chat, "chat_id": chat, "kind": waiting["kind"], "params": params,
            "send_after": send_after}
