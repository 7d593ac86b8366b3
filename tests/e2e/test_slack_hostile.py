"""Hostile requests to `POST /slack/events`, validly signed: never a 500, nothing changed.

Whoever holds the signing secret (or a proxy, or a bug upstream) can send what Slack never
would. Bolt verifies the signature, then parses; what it cannot parse, or what Portier
cannot use, must get a 4xx (or Slack's 200 for an event not handled) and leave no trace.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import func, select

from billing.slack_models import slack_bots
from tests.e2e.slack_world import Team, oauth_service, slack_team
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_driver import Delivery
from tests.world import World


@pytest.fixture
async def team(world: World) -> AsyncIterator[Team]:
    """A workspace with an admin and a member, Portier's Slack app installed."""
    async with slack_team(world) as t:
        yield t


FORM = "application/x-www-form-urlencoded"
DEEP = "[" * 50_000 + "]" * 50_000


def _form(**fields: str) -> bytes:
    return urlencode(fields).encode()


BODIES = {
    "deep JSON event": (DEEP.encode(), "application/json"),
    "deep JSON with a key": (('{"type": "event_callback", "x": ' + DEEP + "}").encode(),
                             "application/json"),
    "payload deeply nested": (_form(payload=DEEP), FORM),
    "payload not JSON": (_form(payload="{not json"), FORM),
    "payload a string": (_form(payload=json.dumps("block_actions")), FORM),
    "payload a list": (_form(payload="[1, 2]"), FORM),
    "payload without user": (_form(payload=json.dumps(
        {"type": "block_actions", "team": {"id": "T0"}, "actions": [
            {"action_id": "portier:0", "value": "x"}]})), FORM),
    "actions a string": (_form(payload=json.dumps(
        {"type": "block_actions", "team": {"id": "T0"}, "user": {"id": "U0"},
         "actions": "portier:0"})), FORM),
    "event a string": (json.dumps({"type": "event_callback", "team_id": "T0",
                                   "event_id": "Ev1", "event": "app_home_opened"}).encode(),
                       "application/json"),
    "event_id a list": (json.dumps({"type": "event_callback", "team_id": ["T0"],
                                    "event_id": ["Ev1"], "event": {
                                        "type": "app_home_opened", "user": "U0"}}).encode(),
                        "application/json"),
    "not UTF-8": (b"\xff\xfe\xfa" * 10, FORM),
    "command with no team": (_form(command="/billing", text="", user_id="U0"), FORM),
    "view with garbage metadata": (_form(payload=json.dumps(
        {"type": "view_submission", "team": {"id": "T0"}, "user": {"id": "U0"},
         "view": {"callback_id": "portier:answer", "private_metadata": "\x00" * 50,
                  "state": {"values": "x"}}})), FORM),
}


async def _post(team: Team, body: bytes, content_type: str) -> Delivery:
    """POST a body signed as Slack signs: v0:timestamp:body under the signing secret
    (https://api.slack.com/authentication/verifying-requests-from-slack), on the raw
    bytes, which need not be UTF-8 (the driver's verifier decodes them first)."""
    stamp = str(int(time.time()))
    digest = hmac.new(team.slack.signing_secret.encode(), b"v0:" + stamp.encode() + b":" + body,
                      hashlib.sha256).hexdigest()
    return await team.driver.post(body, content_type, {}, unsigned=True, headers={
        "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"})


@pytest.mark.parametrize("name", list(BODIES))
async def test_signed_hostile_requests_get_a_4xx_and_change_nothing(
        team: Team, name: str, caplog: pytest.LogCaptureFixture) -> None:
    """Each gets 400, is logged (not what was sent, nor the secret), and leaves the app
    answering the next command."""
    caplog.set_level(logging.INFO)
    body, content_type = BODIES[name]
    delivery = await _post(team, body, content_type)
    assert delivery.status == 400, (delivery.status, delivery.text[:200])
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "Slack request refused" in logged
    assert team.slack.signing_secret not in logged and "[[[[" not in logged
    assert team.slack.ephemerals(team.admin) == []
    await team.slack.assert_no_message(team.admin)
    answer = await team.billing_command(team.admin)  # the app still serves
    assert "Start the team plan" in answer.content, answer.content


async def test_a_lone_surrogate_in_a_command_is_answered_as_text(team: Team) -> None:
    """`%ED%A0%80` (a UTF-8-encoded surrogate) decodes to U+FFFD, as form decoding does; the
    command is answered like any unknown text, in the workspace it came from."""
    state = team.slack.state
    general = team.workspace.general
    fields = urlencode({"command": "/billing", "team_id": team.workspace.id,
                        "user_id": team.admin.id, "channel_id": general,
                        "response_url": state.new_response_url(team.workspace.id, general,
                                                               team.admin.id),
                        "trigger_id": state.new_trigger(team.workspace.id, team.admin.id)})
    delivery = await _post(team, f"{fields}&text=%ED%A0%80".encode(), FORM)
    assert delivery.status == 200
    answer = await team.slack.next_ephemeral(team.admin)
    assert "Team plan" in answer.content, answer.content


@pytest.mark.parametrize("query", [
    "code=abc&state=forged",  # a state Portier never issued
    "code=abc",  # no state
    "code=%ED%A0%80&state=%ED%A0%80",  # a UTF-8-encoded surrogate
    "code=" + "a" * 4000 + "&state=" + "b" * 4000,
    "code[]=1&state[]=2&state=3",
])
async def test_a_hostile_oauth_redirect_stores_nothing(world: World, query: str) -> None:
    """Bolt's OAuth redirect answers a state it did not issue, or a declined install, with
    its failure page (4xx), stores no installation and calls no oauth.v2.access
    (https://api.slack.com/authentication/oauth-v2: check the state before exchanging)."""
    with FakeSlack(token_rotation=True, token_lifetime=3600) as slack:
        async with oauth_service(world, slack) as service, httpx.AsyncClient() as client:
            answer = await client.get(f"{service.url}/slack/oauth_redirect?{query}")
            assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:200])
            # (A declined install, `error=access_denied`, gets Bolt's failure page with 200:
            # the person said no, nothing was sent wrong.)
            async with service.runtime.billing.db.session() as session:
                stored = await session.scalar(select(func.count()).select_from(slack_bots))
            assert stored == 0
            assert slack.calls("oauth.v2.access") == []
            assert (await client.get(f"{service.url}/healthz")).status_code == 200
