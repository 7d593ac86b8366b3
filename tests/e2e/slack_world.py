"""A Slack workspace next to the world: the fake Slack, Portier's SlackChannel, a driver."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet
from pydantic import SecretStr
from starlette.applications import Starlette

from billing import seats, teams
from billing.links import find_link
from bot.service import Service, bind, running
from bot.slack import SlackChannel
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_driver import SlackDriver
from tests.fakes.slack_objects import FakeWorkspace, SlackMessage, SlackUser
from tests.fakes.telegram_server import serve
from tests.world import World


@dataclass
class Team:
    """A world with a Slack workspace in which Portier's Slack channel is installed."""

    world: World
    slack: FakeSlack
    driver: SlackDriver
    channel: SlackChannel
    workspace: FakeWorkspace
    admin: SlackUser
    member: SlackUser

    @property
    def billing(self) -> Any:
        """Return Portier's billing domain."""
        return self.world.service.runtime.billing

    async def billing_command(self, user: SlackUser, text: str = "") -> SlackMessage:
        """Run `/billing text` and return the ephemeral answer."""
        sent = await self.driver.command(user, text)
        assert sent.status == 200 and not sent.late, sent
        return await self.slack.next_ephemeral(user)

    async def buy(self, count: int = 3) -> str:
        """Buy `count` seats for the workspace through Checkout (which links it); return the
        customer."""
        url = await seats.start_team_checkout(self.billing, team_id=self.workspace.id,
                                              user_id=self.admin.id, seats=count, locale="en")
        done = await asyncio.to_thread(self.world.sandbox.complete_checkout,
                                       url.rsplit("/", 1)[1])
        await self.world.settle()
        customer = str(done["customer"])
        link = await self.link_of()
        assert link is not None and link.customer_id == customer, link
        welcome = await self.slack.next_message(self.admin)  # the outbox's DM to the admin
        assert "Team plan started" in welcome.content, welcome.content
        return customer

    async def link_of(self, workspace: FakeWorkspace | None = None) -> Any:
        """Return the workspace's link, if any."""
        async with self.billing.db.session() as session:
            return await find_link(session, channel="slack",
                                   user_id=teams.team_key((workspace or self.workspace).id))


@contextlib.asynccontextmanager
async def slack_team(world: World) -> AsyncIterator[Team]:
    """Serve Portier's SlackChannel (single-workspace mode) against a fake Slack."""
    with FakeSlack() as slack:
        workspace = slack.workspace("acme")
        admin = slack.user(workspace, "ada", is_admin=True)
        member = slack.user(workspace, "bob")
        assert workspace.bot_token
        settings = world.settings.model_copy(update={
            "slack_bot_token": SecretStr(workspace.bot_token),
            "slack_signing_secret": SecretStr(slack.signing_secret),
            "slack_api_base": slack.api_base})
        channel = SlackChannel(settings, world.service.runtime.portal)
        await channel.start()
        service = world.service
        service.worker.senders["slack"] = channel.send  # as `running` does for its channels
        if service.outbox is not None:
            service.outbox.pace.pacing["slack"] = channel.pacing
        app = Starlette(routes=list(channel.routes()))
        try:
            async with serve(app) as base, SlackDriver(slack, base) as driver:
                yield Team(world=world, slack=slack, driver=driver, channel=channel,
                           workspace=workspace, admin=admin, member=member)
        finally:
            service.worker.senders.pop("slack", None)
            await channel.stop()


@contextlib.asynccontextmanager
async def oauth_service(world: World, slack: FakeSlack) -> AsyncIterator[Service]:
    """Run Portier serving Slack by OAuth (no SLACK_BOT_TOKEN, no Telegram) against the fake
    Slack, on a port of its own whose redirect URI the fake knows."""
    sock = bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = world.settings.model_copy(update={
        "slack_signing_secret": SecretStr(slack.signing_secret),
        "slack_client_id": slack.client_id,
        "slack_client_secret": SecretStr(slack.client_secret),
        "slack_oauth_base": slack.oauth_base, "slack_api_base": slack.api_base,
        "data_key": SecretStr(Fernet.generate_key().decode()), "public_url": url,
        "telegram_bot_token": None, "slack_bot_token": None})
    slack.redirect_uri = f"{url}/slack/oauth_redirect"
    async with running(settings, sock=sock) as service:
        yield service
