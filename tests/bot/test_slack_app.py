"""Slack's answers to the team flows: who a picked or typed member or channel is."""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.slack_app import SlackApp
from handlers.flows.team_access import ADMIN, MEMBER, NOBODY

USERS: dict[str, dict[str, Any]] = {
    "U1": {"id": "U1", "team_id": "T1", "name": "ann", "real_name": "Ann Admin",
           "is_admin": True},
    "U2": {"id": "U2", "team_id": "T1", "name": "bob", "real_name": "Bob Builder",
           "profile": {"display_name": "bobby"}},
    "U3": {"id": "U3", "team_id": "T1", "name": "gus", "real_name": "Gus Guest",
           "is_restricted": True},
    "U4": {"id": "U4", "team_id": "T1", "name": "bob2", "real_name": "Bob Builder"},
    "U9": {"id": "U9", "team_id": "T9", "name": "eve", "real_name": "Eve Elsewhere"},
}


def _error(code: str) -> SlackApiError:
    response = AsyncSlackResponse(client=None, http_verb="POST", api_url="", req_args={},
                                  data={"ok": False, "error": code}, headers={},
                                  status_code=200)
    return SlackApiError(code, response)  # type: ignore[no-untyped-call]


async def _users(team: str, member: str) -> dict[str, Any]:
    if member not in USERS:
        raise _error("user_not_found")
    return USERS[member]


async def _directory(team: str) -> list[dict[str, Any]]:
    return [u for u in USERS.values() if u["team_id"] == team]


async def _conversation(team: str, channel: str) -> dict[str, Any]:
    if channel == "C1":
        return {"id": "C1", "is_member": True}
    if channel == "C2":
        return {"id": "C2", "is_member": False}
    raise _error("channel_not_found")


APP = SlackApp(_users, directory=_directory, conversation=_conversation)


async def test_a_picked_or_typed_member_is_looked_up_in_the_workspace() -> None:
    """An id, a mention or a unique name names a member of this workspace with their role;
    another workspace's user, an unknown id and an ambiguous name name nobody."""
    picked = await APP.team_member("T1", "U1")
    assert picked is not None and (picked.name, picked.role) == ("Ann Admin", ADMIN)
    mention = await APP.team_member("T1", "<@U2|bob>")
    assert mention is not None and (mention.id, mention.role) == ("U2", MEMBER)
    for typed, member in (("@bobby", "U2"), ("gus", "U3"), ("ANN ADMIN", "U1")):
        found = await APP.team_member("T1", typed)
        assert found is not None and found.id == member, typed
    guest = await APP.team_member("T1", "U3")
    assert guest is not None and guest.role == NOBODY
    for nobody in ("U9", "U7", "Bob Builder", "eve", ""):
        assert await APP.team_member("T1", nobody) is None, nobody


async def test_a_billing_channel_must_be_the_workspaces_and_have_the_app() -> None:
    """A channel the app is in counts; one it is not in, a DM, another workspace's or a
    user id does not."""
    assert await APP.team_conversation("T1", "C1") == "C1"
    assert await APP.team_conversation("T1", "<#C1|billing>") == "C1"
    for refused in ("C2", "C3", "D1", "U1", "billing"):
        assert await APP.team_conversation("T1", refused) is None, refused
