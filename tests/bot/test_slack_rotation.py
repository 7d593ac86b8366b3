"""Slack token rotation: an expiring bot token is rotated once for every request that finds
it so, Bolt's authorize and the outbox's pushes alike; an outbox push's 429 or 5xx comes back
to the outbox at once.

Slack's rules, as the fake plays them (docs.slack.dev/authentication/using-token-rotation,
formerly api.slack.com/authentication/rotation): with rotation on, an access token expires
(12 hours; Slack answers `token_expired` after) and oauth.v2.access with
grant_type=refresh_token answers a new access token and a new refresh token; a refresh token
works once (`invalid_refresh_token` after). A rate-limited call answers HTTP 429 with
Retry-After (docs.slack.dev/apis/web-api/rate-limits).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.fernet import Fernet
from slack_sdk.errors import SlackTokenRotationError
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.web.async_client import AsyncWebClient

from billing.db import Database
from bot import slack_oauth
from bot.outbox import RetryLater
from bot.service import Service
from bot.slack import SlackChannel
from bot.slack_oauth import EncryptedInstallationStore, FreshBots
from handlers.replies import Reply
from tests.e2e.slack_world import oauth_service
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_driver import SlackDriver
from tests.fakes.slack_objects import FakeWorkspace, SlackUser
from tests.world import World

LIFETIME = 60  # seconds: a token installed so is within the 120 minutes Bolt rotates before
DAY = 12 * 3600  # Slack's lifetime of a rotated token


def _refreshes(slack: FakeSlack) -> list[dict[str, Any]]:
    return [p for p in slack.calls("oauth.v2.access") if p.get("grant_type") == "refresh_token"]


def _spent(slack: FakeSlack) -> int:
    return sum(1 for c in slack.call_log if c.error == "invalid_refresh_token")


@dataclass
class Installed:
    """Portier (OAuth mode, the outbox running) with one workspace installed by OAuth."""

    service: Service
    slack: FakeSlack
    driver: SlackDriver
    channel: SlackChannel
    workspace: FakeWorkspace
    owner: SlackUser


@pytest.fixture
async def installed(world: World) -> AsyncIterator[Installed]:
    """A workspace installed by OAuth with a token that expires in LIFETIME seconds; the
    fake's clock is then moved past it (the stored token answers token_expired), and the
    tokens it issues from then on last Slack's 12 hours."""
    with FakeSlack(token_rotation=True, token_lifetime=LIFETIME) as slack:
        workspace = slack.workspace("acme", install=False)
        owner = slack.user(workspace, "olga", is_admin=True)
        async with oauth_service(world, slack) as service, \
                SlackDriver(slack, service.url) as driver:
            done = await driver.install(owner)
            assert done.status_code == 200, done.text
            channel = service.channel("slack")
            assert isinstance(channel, SlackChannel) and channel.store is not None
            slack.state.token_lifetime = DAY
            slack.advance(LIFETIME + 1)
            assert slack.tokens(workspace) and not _refreshes(slack)
            yield Installed(service, slack, driver, channel, workspace, owner)


async def test_a_burst_after_expiry_rotates_the_token_once(installed: Installed) -> None:
    """Ten /billing at once from a workspace whose token has expired, and two outbox pushes
    to it meanwhile: one oauth.v2.access refresh for all of them, the rotated bot saved once,
    every command answered and every push delivered."""
    slack, driver, owner = installed.slack, installed.driver, installed.owner
    chat = f"{installed.workspace.id}:{owner.id}"
    sent = await asyncio.gather(
        *(driver.command(owner) for _ in range(10)),
        *(installed.channel.send(chat, Reply(f"push {n}")) for n in range(2)))
    assert [d.status for d in sent[:10]] == [200] * 10
    answers = [await slack.next_ephemeral(owner) for _ in range(10)]
    assert all("Start the team plan" in a.content for a in answers)
    pushed = {(await slack.next_message(owner)).content for _ in range(2)}
    assert pushed == {"push 0", "push 1"}
    assert len(_refreshes(slack)) == 1 and _spent(slack) == 0
    assert not [c for c in slack.call_log if c.error == "token_expired"]
    store = installed.channel.store
    assert store is not None
    bot = await store.async_reread_bot(enterprise_id=None, team_id=installed.workspace.id)
    assert bot is not None and bot.bot_token == installed.workspace.bot_token  # the new one
    assert (bot.bot_token_expires_at or 0) > time.time() + DAY - 60
    await driver.command(owner)  # fresh now: no rotation
    await slack.next_ephemeral(owner)
    assert len(_refreshes(slack)) == 1


async def test_an_outbox_push_after_expiry_rotates_and_is_sent(installed: Installed) -> None:
    """A push outside any update (the outbox's send) finds the stored token expired, rotates
    it and is delivered; the next push uses the rotated token."""
    slack, owner = installed.slack, installed.owner
    chat = f"{installed.workspace.id}:{owner.id}"
    await installed.channel.send(chat, Reply("Your invoice is paid"))
    assert (await slack.next_message(owner)).content == "Your invoice is paid"
    await installed.channel.send(chat, Reply("Again"))
    assert (await slack.next_message(owner)).content == "Again"
    assert len(_refreshes(slack)) == 1
    posted = [c for c in slack.call_log if c.method == "chat.postMessage"]
    assert [c.error for c in posted] == [None, None]


async def test_an_outbox_push_hides_no_429_or_5xx(installed: Installed) -> None:
    """chat.postMessage answering 429 (Retry-After: 30) or 500 to an outbox push comes back
    as RetryLater at once, after one call, for the outbox to keep the notice pending; a
    client answering inside an update keeps its retries."""
    slack, owner, channel = installed.slack, installed.owner, installed.channel
    chat = f"{installed.workspace.id}:{owner.id}"
    slack.fail_next("chat.postMessage", 429, retry_after=30)
    started = time.monotonic()
    with pytest.raises(RetryLater) as later:
        await channel.send(chat, Reply("x"))
    assert later.value.seconds == 30
    slack.fail_next("chat.postMessage", 500)
    with pytest.raises(RetryLater) as later:
        await channel.send(chat, Reply("y"))
    assert later.value.seconds == 5
    assert time.monotonic() - started < 1.0
    assert [c.status for c in slack.call_log if c.method == "chat.postMessage"] == [429, 500]
    await channel.send(chat, Reply("z"))
    assert (await slack.next_message(owner)).content == "z"
    answering = await channel._client_for(installed.workspace.id)  # noqa: SLF001
    assert [type(h).__name__ for h in answering.retry_handlers] == [
        "AsyncRateLimitErrorRetryHandler", "AsyncServerErrorRetryHandler"]


# -- FreshBots on its own: what another process (a second replica) did -------------------



def _stored_bot(team: FakeWorkspace, expires_in: int) -> Bot:
    assert team.bot_token and team.refresh_token
    return Bot(app_id="A0PORTIER1", team_id=team.id, bot_token=team.bot_token,
               bot_refresh_token=team.refresh_token, bot_id=team.bot_id,
               bot_user_id=team.bot_user_id, bot_scopes=["commands"],
               bot_token_expires_at=int(time.time()) + expires_in, installed_at=time.time())


async def test_a_refresh_token_spent_by_another_replica_finds_its_bot(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another replica spent the refresh token and saves the rotated bot a moment later:
    Slack answers invalid_refresh_token here, and the bot that replica saved is read and
    used (REREAD_PAUSES). When nobody saves one and the token has expired, the failure is
    raised; while the token has time left, it is still used."""
    monkeypatch.setattr(slack_oauth, "REREAD_PAUSES", (0.0, 0.05, 0.2))
    with FakeSlack(token_rotation=True, token_lifetime=LIFETIME) as slack:
        team = slack.workspace("acme")
        key = Fernet.generate_key().decode()  # one PORTIER_DATA_KEY, two processes
        store = EncryptedInstallationStore(slack.client_id, db.engine, key,
                                           read_engine=db.read_engine)
        other = EncryptedInstallationStore(slack.client_id, db.engine, key)
        web = AsyncWebClient(base_url=slack.api_base)
        bots = FreshBots(store, client_id=slack.client_id, client_secret=slack.client_secret,
                         client=web)
        old = _stored_bot(team, LIFETIME)
        await store.async_save_bot(old)
        where = {"enterprise_id": None, "team_id": team.id}
        assert (await store.async_find_bot(**where)) is not None  # this replica keeps it

        rotated = await FreshBots(other, client_id=slack.client_id,
                                  client_secret=slack.client_secret, client=web).rotator \
            .perform_bot_token_rotation(bot=old, minutes_before_expiration=120)
        assert rotated is not None

        async def save_later() -> None:
            await asyncio.sleep(0.1)  # between the other replica's refresh and its save
            await other.async_save_bot(rotated)

        saving = asyncio.ensure_future(save_later())
        found = await bots(**where)
        await saving
        assert found is not None and found.bot_token == rotated.bot_token
        assert _spent(slack) == 1 and len(_refreshes(slack)) == 2

        # Nobody saves anything: a token with time left is used, an expired one fails.
        spent = _stored_bot(team, 3600)
        spent.bot_refresh_token = old.bot_refresh_token  # spent above
        await store.async_save_bot(spent)
        kept = await bots(**where)
        assert kept is not None and kept.bot_token == spent.bot_token
        spent.bot_token_expires_at = int(time.time()) - 1
        await store.async_save_bot(spent)
        results = await asyncio.gather(*(bots(**where) for _ in range(5)),
                                       return_exceptions=True)
        assert all(isinstance(r, SlackTokenRotationError) for r in results), results
        assert _spent(slack) == 3  # one refresh for the five that asked together
