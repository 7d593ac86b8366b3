"""Neutral replies as Block Kit: sections of mrkdwn, buttons in actions blocks, a modal that
asks for one answer (a number of seats) where a reply expects text, with a user or
conversation picker (users_select, conversations_select) where it asks for one."""

from __future__ import annotations

import json
from typing import Any

from handlers.replies import CONVERSATION, USER, Reply

ACTION = "portier:act"  # action_id prefix of buttons carrying a handler's action data
LINK = "portier:url"  # URL buttons (Slack sends block_actions for them too; ignored)
ANSWER = "portier:answer"  # callback_id of the modal that answers a question
ASK = "portier:ask"  # a button that opens that modal when no trigger was at hand
PICK = "portier:pick"  # a picker in a message, answering the question (no modal at hand)
MAX_SECTION = 3000  # Block Kit: a section's text
MAX_BLOCKS = 50  # Block Kit: blocks in a message
MAX_FALLBACK = 3000  # the notification text shown where blocks are not


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn reserves (docs.slack.dev: formatting)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fallback(reply: Reply) -> str:
    """Return the plain text of a reply (notifications, screen readers)."""
    text = f"{reply.title}\n{reply.text}" if reply.title else reply.text
    return text[:MAX_FALLBACK] or " "


def _sections(text: str) -> list[dict[str, Any]]:
    chunks = [text[i:i + MAX_SECTION] for i in range(0, len(text), MAX_SECTION)]
    return [{"type": "section", "text": {"type": "mrkdwn", "text": c}} for c in chunks if c]


def _button(label: str, number: int, *, action: str | None, url: str | None
            ) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "button",
                               "text": {"type": "plain_text", "text": label[:75] or "…"}}
    if url:
        element |= {"action_id": f"{LINK}:{number}", "url": url[:3000]}
    else:
        element |= {"action_id": f"{ACTION}:{number}", "value": (action or "")[:2000]}
    return element


def blocks(reply: Reply) -> list[dict[str, Any]]:
    """Return the reply as blocks: the title in bold, the text, one actions block a row."""
    body = escape(reply.text)
    text = f"*{escape(reply.title)}*\n{body}" if reply.title else body
    out = _sections(text)
    number = 0
    for row in reply.buttons:
        elements = []
        for button in row[:25]:
            elements.append(_button(button.label, number, action=button.action, url=button.url))
            number += 1
        if elements:
            out.append({"type": "actions", "elements": elements})
    return out[:MAX_BLOCKS]


def ask_button(label: str, question: str) -> dict[str, Any]:
    """Return an actions block with a button that opens the answer modal."""
    return {"type": "actions", "elements": [{
        "type": "button", "action_id": ASK, "value": question[:2000],
        "text": {"type": "plain_text", "text": label[:75]}}]}


def picker(pick: str | None, placeholder: str, action_id: str) -> dict[str, Any] | None:
    """Return the select element of a user or conversation question (None for text).

    Conversations are channels the app can be in: public and private, no DMs, none shared
    with other organisations (docs.slack.dev/reference/block-kit/composition-objects/
    conversation-filter-object)."""
    hint = {"type": "plain_text", "text": placeholder[:150] or "…"}
    if pick == USER:
        return {"type": "users_select", "action_id": action_id, "placeholder": hint}
    if pick == CONVERSATION:
        return {"type": "conversations_select", "action_id": action_id, "placeholder": hint,
                "filter": {"include": ["public", "private"], "exclude_bot_users": True,
                           "exclude_external_shared_channels": True}}
    return None


def pick_block(pick: str, placeholder: str) -> dict[str, Any]:
    """Return an actions block with the picker that answers the question in a message."""
    element = picker(pick, placeholder, PICK)
    return {"type": "actions", "elements": [element]} if element else {
        "type": "context", "elements": [{"type": "plain_text", "text": placeholder[:150]}]}


def answer_modal(reply: Reply, *, title: str, submit: str, label: str,
                 metadata: dict[str, str], choose: str = "Choose") -> dict[str, Any]:
    """Return a modal asking the reply's question with one input: text, or a picker."""
    question = escape(reply.text)
    element = picker(reply.pick, choose, "value") or {
        "type": "plain_text_input", "action_id": "value", "max_length": 1000}
    return {
        "type": "modal", "callback_id": ANSWER,
        "private_metadata": json.dumps(metadata)[:3000],
        "title": {"type": "plain_text", "text": (reply.title or title)[:24]},
        "submit": {"type": "plain_text", "text": submit[:24]},
        "blocks": [*_sections(question)[:1], {
            "type": "input", "block_id": "answer",
            "label": {"type": "plain_text", "text": label[:2000]},
            "element": element}],
    }
