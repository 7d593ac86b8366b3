"""A Slack team's billing admins for its notices, from users.list (against the fake Slack)."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from billing.team_notices import TeamAdmin
from bot.slack import role_of
from bot.slack_admins import SlackRoster, billing_admins
from tests.fakes.slack import FakeSlack


async def test_admins_owners_and_the_installer_page_by_page() -> None:
    """Admins and owners of this workspace, and the installer, over several pages of
    users.list with their language and zone; members, guests, bots, deactivated users and
    another workspace's admins are left out."""
    with FakeSlack() as slack:
        acme, other = slack.workspace("acme"), slack.workspace("other")
        slack.user(acme, "ada", is_admin=True)
        slack.user(acme, "bob")
        cleo = slack.user(acme, "cleo", is_owner=True, locale="de-DE", tz="Europe/Vienna")
        slack.user(acme, "dan", is_admin=True, is_restricted=True)
        slack.user(acme, "eve", is_admin=True, deleted=True)
        fay = slack.user(acme, "fay", locale="fr-FR")
        slack.user(acme, "bot", is_admin=True, is_bot=True)
        slack.user(other, "zed", is_admin=True)
        client = AsyncWebClient(token=acme.bot_token, base_url=slack.api_base)
        found = await billing_admins(client, acme.id, page_size=2, also={fay.id},
                                     is_admin=lambda user: role_of(user) == "admin")
        names = {user.id: user.name for user in slack.members(acme)}
        assert [(names[a.member_id], a.locale) for a in found] == [
            ("ada", "en"), ("cleo", "de"), ("fay", None)]
        assert found[1] == TeamAdmin(cleo.id, "de", "Europe/Vienna")
        assert len(slack.calls("users.list")) == 4  # 8 users, 2 a page


async def test_the_roster_asks_slack_once_a_minute_and_portier_each_time() -> None:
    """Two notices in a row ask users.list once; a billing admin added in between counts at
    once, as does one removed."""
    with FakeSlack() as slack:
        acme = slack.workspace("acme")
        ada = slack.user(acme, "ada", is_admin=True)
        bob = slack.user(acme, "bob")
        added: list[str] = []
        client = AsyncWebClient(token=acme.bot_token, base_url=slack.api_base)

        async def client_for(team: str) -> AsyncWebClient:
            return client

        async def extra(team: str) -> list[str]:
            return list(added)

        roster = SlackRoster(client_for, lambda user: role_of(user) == "admin", extra=extra)
        assert [a.member_id for a in await roster(acme.id)] == [ada.id]
        added.append(bob.id)
        assert [a.member_id for a in await roster(acme.id)] == [ada.id, bob.id]
        added.clear()
        assert [a.member_id for a in await roster(acme.id)] == [ada.id]
        assert len(slack.calls("users.list")) == 1
