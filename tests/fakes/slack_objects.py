"""Workspaces, users, conversations, recorded messages and views of the fake Slack."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakeWorkspace:
    """A Slack workspace (team); bot_token is set once the app is installed in it."""

    id: str
    domain: str
    name: str
    enterprise_id: str | None = None
    bot_user_id: str = ""
    bot_id: str = ""
    bot_token: str | None = None
    refresh_token: str | None = None
    installer_id: str | None = None
    general: str = ""  # the #general channel every member is in

    @property
    def url(self) -> str:
        """Return the workspace URL auth.test reports."""
        return f"https://{self.domain}.slack.com/"

    def team_dict(self) -> dict[str, Any]:
        """Return the team object interaction payloads carry."""
        return {"id": self.id, "domain": self.domain}


@dataclass
class SlackUser:
    """A member of a workspace, with the flags users.info reports; change them freely."""

    id: str
    team_id: str
    name: str
    real_name: str = ""
    is_admin: bool = False
    is_owner: bool = False
    is_primary_owner: bool = False
    is_restricted: bool = False  # a guest (multi-channel); ultra = single-channel guest
    is_ultra_restricted: bool = False
    is_bot: bool = False
    locale: str = "en-US"
    tz: str = "Europe/Berlin"
    deleted: bool = False

    def to_dict(self, *, include_locale: bool = False) -> dict[str, Any]:
        """Return the user object users.info answers with."""
        data: dict[str, Any] = {
            "id": self.id, "team_id": self.team_id, "name": self.name,
            "deleted": self.deleted, "color": "9f69e7", "real_name": self.real_name or self.name,
            "tz": self.tz, "tz_label": self.tz, "tz_offset": 3600,
            "profile": {"real_name": self.real_name or self.name,
                        "display_name": self.name, "team": self.team_id},
            "is_admin": self.is_admin, "is_owner": self.is_owner,
            "is_primary_owner": self.is_primary_owner, "is_restricted": self.is_restricted,
            "is_ultra_restricted": self.is_ultra_restricted, "is_bot": self.is_bot,
            "is_app_user": False, "updated": 1_700_000_000,
        }
        if include_locale:
            data["locale"] = self.locale
        return data

    def payload_dict(self) -> dict[str, Any]:
        """Return the user object of an interaction payload."""
        return {"id": self.id, "username": self.name, "name": self.name,
                "team_id": self.team_id}


@dataclass
class Conversation:
    """A channel (C…), private channel or the app's DM with one user (D…)."""

    id: str
    team_id: str
    name: str
    is_private: bool = False
    is_im: bool = False
    members: set[str] = field(default_factory=set)
    bot_member: bool = True
    user: str | None = None  # the other member of a DM


@dataclass(frozen=True)
class SlackMessage:
    """A message as a user sees it after one post, update or delete.

    ``user`` is the only user who sees an ephemeral message; ``method`` is the Web API
    method (or "response_url", "ack") that produced this version.
    """

    channel: str
    ts: str
    text: str
    blocks: tuple[dict[str, Any], ...]
    method: str
    ephemeral: bool = False
    user: str | None = None
    thread_ts: str | None = None
    edited: bool = False
    deleted: bool = False
    team_id: str = ""
    params: dict[str, Any] = field(default_factory=dict, compare=False)
    at: float = field(default_factory=time.perf_counter, compare=False)  # when it arrived

    @property
    def stream(self) -> str:
        """Return what waiters listen on: the channel, or "ephemeral:<user>"."""
        return f"ephemeral:{self.user}" if self.ephemeral else self.channel

    @property
    def content(self) -> str:
        """Return the visible text: every text of the blocks (or the text without blocks)."""
        return blocks_text(self.blocks) if self.blocks else self.text

    def buttons(self) -> list[dict[str, Any]]:
        """Return every button and select of the message, with its block_id."""
        return elements(self.blocks)

    def button(self, label: str) -> dict[str, Any]:
        """Return the element labelled (or with the action_id) label; raise LookupError."""
        return find_element(self.blocks, label)

    def to_dict(self, bot_user_id: str = "", bot_id: str = "", app_id: str = "") -> dict[str, Any]:
        """Return the message object Slack's answers and payloads carry."""
        data: dict[str, Any] = {"type": "message", "text": self.text, "ts": self.ts,
                                "user": bot_user_id, "bot_id": bot_id, "app_id": app_id,
                                "team": self.team_id}
        if self.blocks:
            data["blocks"] = list(self.blocks)
        if self.thread_ts:
            data["thread_ts"] = self.thread_ts
        return data


@dataclass
class FakeView:
    """A modal or App Home view as the fake holds it now."""

    id: str
    team_id: str
    user_id: str
    type: str
    body: dict[str, Any]
    hash: str
    root_view_id: str
    previous_view_id: str | None = None
    closed: bool = False
    versions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def blocks(self) -> list[dict[str, Any]]:
        """Return the view's blocks."""
        return list(self.body.get("blocks", []))

    @property
    def callback_id(self) -> str:
        """Return the view's callback_id ("" when unset)."""
        return str(self.body.get("callback_id", ""))

    @property
    def private_metadata(self) -> str:
        """Return the view's private_metadata ("" when unset)."""
        return str(self.body.get("private_metadata", ""))

    @property
    def title(self) -> str:
        """Return the modal's title text."""
        return str((self.body.get("title") or {}).get("text", ""))

    @property
    def content(self) -> str:
        """Return every text of the view's blocks."""
        return blocks_text(self.blocks)

    def buttons(self) -> list[dict[str, Any]]:
        """Return every interactive element of the view, with its block_id."""
        return elements(self.blocks)

    def button(self, label: str) -> dict[str, Any]:
        """Return the element labelled (or with the action_id) label; raise LookupError."""
        return find_element(self.blocks, label)

    def to_dict(self, app_id: str, bot_id: str, values: dict[str, Any] | None = None
                ) -> dict[str, Any]:
        """Return the view object views.* answer with and payloads carry."""
        return {
            "id": self.id, "team_id": self.team_id, "type": self.type,
            "blocks": self.blocks, "private_metadata": self.private_metadata,
            "callback_id": self.callback_id,
            "state": {"values": values or {}}, "hash": self.hash,
            "title": self.body.get("title"), "clear_on_close": bool(
                self.body.get("clear_on_close", False)),
            "notify_on_close": bool(self.body.get("notify_on_close", False)),
            "close": self.body.get("close"), "submit": self.body.get("submit"),
            "previous_view_id": self.previous_view_id, "root_view_id": self.root_view_id,
            "app_id": app_id, "external_id": str(self.body.get("external_id", "")),
            "app_installed_team_id": self.team_id, "bot_id": bot_id,
        }


def _text(value: Any) -> str:
    """Return the string of a text object (or of a plain string)."""
    if isinstance(value, dict):
        return str(value.get("text", ""))
    return "" if value is None else str(value)


def blocks_text(blocks: Any) -> str:
    """Return the texts of blocks, one line per text, as a person would read them."""
    lines: list[str] = []
    for block in blocks or ():
        kind = block.get("type")
        if kind in ("section", "header"):
            if block.get("text"):
                lines.append(_text(block["text"]))
            lines.extend(_text(f) for f in block.get("fields", ()))
        elif kind == "context":
            lines.extend(_text(e) for e in block.get("elements", ()) if "text" in e)
        elif kind == "input":
            lines.append(_text(block.get("label")))
        elif kind == "actions":
            lines.extend(_text(e.get("text")) for e in block.get("elements", ()) if "text" in e)
    return "\n".join(line for line in lines if line)


def elements(blocks: Any) -> list[dict[str, Any]]:
    """Return the interactive elements of blocks, each with its block's block_id."""
    found: list[dict[str, Any]] = []
    for block in blocks or ():
        block_id = block.get("block_id", "")
        candidates = list(block.get("elements", ())) if block.get("type") == "actions" else []
        if block.get("accessory"):
            candidates.append(block["accessory"])
        if block.get("type") == "input" and block.get("element"):
            candidates.append(block["element"])
        found.extend({**e, "block_id": block_id} for e in candidates if "action_id" in e
                     or e.get("type") == "button")
    return found


def find_element(blocks: Any, label: str) -> dict[str, Any]:
    """Return the element whose text or action_id is label; raise LookupError."""
    for element in elements(blocks):
        if label in (_text(element.get("text")), element.get("action_id")):
            return element
    labels = [_text(e.get("text")) or e.get("action_id") for e in elements(blocks)]
    raise LookupError(f"no element {label!r}; there are {labels}")
