"""The Slack channel's pieces: settings, Block Kit rendering, send outcomes, roles."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.outbox import Rejected, RetryLater, Unreachable
from bot.settings import SettingsError, load_settings
from bot.slack import SlackChannel, role_of
from bot.slack_errors import outcome
from bot.slack_render import blocks, escape, fallback
from handlers.flows.team import ADMIN, MEMBER, NOBODY
from handlers.replies import Button, Reply, rows
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_objects import FakeWorkspace

BASE = {"stripe_secret_key": "sk_test_x", "stripe_webhook_secret": "whsec_x",
        "link_secret": "l" * 32}
SIGNING = "slack-signing-secret-value"
DATA_KEY = "A" * 43 + "="


@pytest.mark.parametrize(("extra", "line"), [
    ({"slack_signing_secret": SIGNING}, "SLACK_BOT_TOKEN: required"),
    ({"slack_client_id": "1.2", "slack_signing_secret": SIGNING,
      "slack_client_secret": "s"}, "PORTIER_DATA_KEY: required"),
    ({"slack_client_id": "1.2", "slack_signing_secret": SIGNING}, "SLACK_CLIENT_SECRET: required"),
    ({"slack_client_secret": "s", "slack_client_id": "1.2", "data_key": DATA_KEY},
     "SLACK_SIGNING_SECRET: required"),
])
def test_missing_slack_settings_stop_run_with_one_line(extra: dict[str, str],
                                                       line: str) -> None:
    """A Slack setting that needs another names the missing one, on one line."""
    with pytest.raises(SettingsError) as info:
        load_settings(**BASE, **extra).require_for_run()
    assert str(info.value).startswith(line) and "\n" not in str(info.value)


@pytest.mark.parametrize(("name", "value", "env", "secret"), [
    ("slack_bot_token", "not-a-token", "SLACK_BOT_TOKEN", True),
    ("data_key", "short", "PORTIER_DATA_KEY", True),
    ("slack_client_id", "abc", "SLACK_CLIENT_ID", False),
    ("slack_oauth_base", "slack.com/oauth", "SLACK_OAUTH_BASE", False),
])
def test_malformed_slack_settings_are_named(name: str, value: str, env: str,
                                            secret: bool) -> None:
    """A malformed Slack setting is refused naming it; a secret's value is never echoed."""
    with pytest.raises(SettingsError) as info:
        load_settings(**{name: value})
    assert str(info.value).startswith(env) and "\n" not in str(info.value)
    assert not secret or value not in str(info.value)


def test_slack_modes() -> None:
    """A bot token serves one workspace; client id and secret turn OAuth on."""
    single = load_settings(**BASE, slack_bot_token="xoxb-1-2", slack_signing_secret=SIGNING)
    single.require_for_run()
    assert single.slack_enabled and not single.slack_oauth
    many = load_settings(**BASE, slack_client_id="1.2", slack_client_secret="s",
                         slack_signing_secret=SIGNING, data_key=DATA_KEY)
    many.require_for_run()
    assert many.slack_enabled and many.slack_oauth
    assert "s" not in repr(many.slack_client_secret) and DATA_KEY not in repr(many)


def test_blocks_escape_and_keep_within_block_kit() -> None:
    """Text is escaped for mrkdwn and split into sections; buttons carry action data."""
    reply = Reply("<b>&" + "x" * 4000, title="Plan", buttons=rows(
        Button("Go", action="team:seats"), Button("Pay", url="https://pay.example/1")))
    shown = blocks(reply)
    assert shown[0]["text"]["text"].startswith("*Plan*\n&lt;b&gt;&amp;")
    assert all(len(b["text"]["text"]) <= 3000 for b in shown if b["type"] == "section")
    go, pay = shown[-2]["elements"][0], shown[-1]["elements"][0]
    assert go["value"] == "team:seats" and pay["url"] == "https://pay.example/1"
    assert go["action_id"] != pay["action_id"]
    assert fallback(Reply("")) == " " and escape("a>b") == "a&gt;b"


def test_roles_come_from_users_info() -> None:
    """Admins and owners are admins; guests, bots and deleted users are neither."""
    assert role_of({"is_admin": True}) == ADMIN
    assert role_of({"is_primary_owner": True}) == ADMIN
    assert role_of({}) == MEMBER
    for flag in ("is_restricted", "is_ultra_restricted", "is_bot", "deleted"):
        assert role_of({flag: True, "is_admin": True}) == NOBODY


@pytest.fixture
async def channel(tmp_path: Path) -> AsyncIterator[tuple[SlackChannel, FakeSlack,
                                                          FakeWorkspace]]:
    """A SlackChannel against a fake Slack (send needs no portal)."""
    with FakeSlack() as slack:
        team = slack.workspace("acme")
        assert team.bot_token
        settings = load_settings(slack_bot_token=SecretStr(team.bot_token),
                                 slack_signing_secret=SecretStr(slack.signing_secret),
                                 slack_api_base=slack.api_base,
                                 database_url=f"sqlite:///{tmp_path / 'x.db'}")

        class NoPortal:
            billing = None

            def register(self, app: object) -> None:
                return None

        made = SlackChannel(settings, NoPortal())  # type: ignore[arg-type]
        try:
            yield made, slack, team
        finally:
            await made.stop()


async def test_send_maps_slacks_errors_to_outcomes(
        channel: tuple[SlackChannel, FakeSlack, FakeWorkspace]) -> None:
    """Sent; channel_not_found / not_in_channel → Unreachable; ratelimited → RetryLater with
    Retry-After and a 5xx → RetryLater, each after one call (the outbox waits, not the
    client); invalid_blocks / msg_too_long → Rejected."""
    made, slack, team = channel
    ada = slack.user(team, "ada")
    issued: list[str] = []

    async def issue() -> None:
        issued.append("now")

    await made.send(f"{team.id}:{ada.id}", Reply("Seats changed", title="Team"), issue=issue)
    assert (await slack.next_message(ada)).content.startswith("*Team*") and issued == ["now"]
    quiet = slack.channel(team, "quiet", bot_member=False)
    with pytest.raises(Unreachable):
        await made.send(f"{team.id}:C0NOPE", Reply("x"))
    with pytest.raises(Unreachable):
        await made.send(f"{team.id}:{quiet.id}", Reply("x"))
    with pytest.raises(Unreachable):
        await made.send("not-a-chat", Reply("x"))
    slack.fail_next("chat.postMessage", 429, retry_after=2)  # no retry inside the client
    with pytest.raises(RetryLater) as later:
        await made.send(f"{team.id}:{ada.id}", Reply("x"))
    assert later.value.seconds == 2
    slack.fail_next("chat.postMessage", 503)
    with pytest.raises(RetryLater) as later:
        await made.send(f"{team.id}:{ada.id}", Reply("x"))
    assert later.value.seconds == 5
    assert [c.status for c in slack.call_log if c.method == "chat.postMessage"][-2:] == [
        429, 503]
    slack.fail_next("chat.postMessage", 200, error="msg_too_long")
    with pytest.raises(Rejected):
        await made.send(f"{team.id}:{ada.id}", Reply("x"))
    slack.fail_next("chat.postMessage", 200, error="invalid_blocks")
    with pytest.raises(Rejected):
        await made.send(f"{team.id}:{ada.id}", Reply("y"))



@pytest.mark.parametrize(("status", "error", "headers", "seconds"), [
    (429, "ratelimited", {"Retry-After": "30"}, 30.0),
    (429, "ratelimited", {"retry-after": "0"}, 1.0),  # at least a second
    (200, "ratelimited", {}, 1.0),
    (500, "internal_error", {}, 5.0),
    (503, "service_unavailable", {"Retry-After": "12"}, 12.0),
    (502, "", {"Retry-After": "soon"}, 5.0),
])
def test_ratelimits_and_server_errors_wait_for_the_outbox(
        status: int, error: str, headers: dict[str, str], seconds: float) -> None:
    """A 429 waits its Retry-After (docs.slack.dev/apis/web-api/rate-limits), a 5xx 5 s or
    the Retry-After it sent; both are the outbox's RetryLater, never Rejected."""
    answer = AsyncSlackResponse(client=None, http_verb="POST", api_url="chat.postMessage",
                                req_args={}, data={"ok": False, "error": error},
                                headers=headers, status_code=status)
    later = outcome(SlackApiError("failed", answer))
    assert isinstance(later, RetryLater) and later.seconds == seconds


def test_a_bot_token_beside_oauth_settings_is_said(caplog: pytest.LogCaptureFixture,
                                                   tmp_path: Path) -> None:
    """With SLACK_BOT_TOKEN and the OAuth client settings both set, the one workspace is
    served and a warning says the OAuth settings are not used."""
    settings = load_settings(slack_bot_token=SecretStr("xoxb-1-2"),
                             slack_signing_secret=SecretStr(SIGNING), slack_client_id="1.2",
                             slack_client_secret=SecretStr("s"),
                             database_url=f"sqlite:///{tmp_path / 'x.db'}")

    class NoPortal:
        billing = None

    made = SlackChannel(settings, NoPortal())  # type: ignore[arg-type]
    assert made.store is None
    assert "OAuth settings (SLACK_CLIENT_ID, SLACK_CLIENT_SECRET) are not used" in caplog.text
