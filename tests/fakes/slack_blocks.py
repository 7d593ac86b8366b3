"""Basic Block Kit validation, so a message Slack would refuse is refused here too.

Limits from Slack's Block Kit reference (https://docs.slack.dev/reference/block-kit/blocks,
…/block-elements): up to 50 blocks in a message and 100 in a modal or Home tab; section text
3000 characters, 10 fields of 2000; header 150; an actions block 25 elements, a context
block 10; block_id and action_id 255; a button's text 75, value 2000, url 3000.
"""

from __future__ import annotations

from typing import Any

from .slack_state import ApiError

MAX_BLOCKS = {"message": 50, "modal": 100, "home": 100}
MAX_TEXT = 40_000  # chat.postMessage: longer text is msg_too_long
BLOCK_TYPES = frozenset({
    "section", "actions", "context", "header", "divider", "input", "image", "rich_text",
})
ELEMENT_TYPES = frozenset({
    "button", "static_select", "external_select", "users_select", "multi_users_select",
    "conversations_select", "multi_conversations_select", "channels_select",
    "multi_static_select", "overflow", "datepicker", "timepicker", "checkboxes",
    "radio_buttons", "plain_text_input", "number_input", "email_text_input", "url_text_input",
})


class _Check:
    """Collect the problems of one payload in Slack's "[ERROR] … [json-pointer:…]" form."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, message: str, pointer: str) -> None:
        """Note one problem at a JSON pointer."""
        self.problems.append(f"[ERROR] {message} [json-pointer:{pointer}]")

    def text(self, value: Any, pointer: str, limit: int, *, plain: bool = False) -> None:
        """Check a text object: its type, that it is not empty, and its length."""
        if not isinstance(value, dict) or not isinstance(value.get("text"), str):
            self.fail("must be a text object", pointer)
            return
        kinds = ("plain_text",) if plain else ("plain_text", "mrkdwn")
        if value.get("type") not in kinds:
            self.fail(f"must be one of {kinds}", f"{pointer}/type")
        if not value["text"]:
            self.fail("must be more than 0 characters", f"{pointer}/text")
        if len(value["text"]) > limit:
            self.fail(f"must be less than {limit + 1} characters", f"{pointer}/text")

    def length(self, value: Any, pointer: str, limit: int) -> None:
        """Check that an optional string is at most limit characters."""
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            self.fail(f"must be a string of at most {limit} characters", pointer)


def validate_blocks(blocks: Any, surface: str = "message") -> None:
    """Raise invalid_blocks when blocks break Block Kit's basic rules."""
    check = _Check()
    if not isinstance(blocks, list):
        check.fail("must be an array", "")
    else:
        if len(blocks) > MAX_BLOCKS[surface]:
            check.fail(f"must be less than {MAX_BLOCKS[surface] + 1} items", "")
        block_ids: set[str] = set()
        for index, block in enumerate(blocks):
            _block(check, block, f"/blocks/{index}", block_ids)
    if check.problems:
        raise ApiError("invalid_blocks", errors=check.problems,
                       response_metadata={"messages": check.problems})


def _block(check: _Check, block: Any, at: str, block_ids: set[str]) -> None:
    """Check one block."""
    if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
        check.fail("unsupported type", f"{at}/type")
        return
    block_id = block.get("block_id")
    check.length(block_id, f"{at}/block_id", 255)
    if isinstance(block_id, str):
        if block_id in block_ids:
            check.fail("block_id must be unique", f"{at}/block_id")
        block_ids.add(block_id)
    kind = block["type"]
    if kind == "section":
        if "text" not in block and "fields" not in block:
            check.fail("must provide text or fields", at)
        if "text" in block:
            check.text(block["text"], f"{at}/text", 3000)
        fields = block.get("fields", [])
        if len(fields) > 10:
            check.fail("must be less than 11 items", f"{at}/fields")
        for number, item in enumerate(fields):
            check.text(item, f"{at}/fields/{number}", 2000)
        if "accessory" in block:
            _element(check, block["accessory"], f"{at}/accessory", set())
    elif kind == "header":
        check.text(block.get("text"), f"{at}/text", 150, plain=True)
    elif kind == "actions":
        items = block.get("elements")
        if not isinstance(items, list) or not items:
            check.fail("must provide elements", f"{at}/elements")
            return
        if len(items) > 25:
            check.fail("must be less than 26 items", f"{at}/elements")
        action_ids: set[str] = set()
        for number, item in enumerate(items):
            _element(check, item, f"{at}/elements/{number}", action_ids)
    elif kind == "context":
        items = block.get("elements")
        if not isinstance(items, list) or not 1 <= len(items) <= 10:
            check.fail("must provide 1 to 10 elements", f"{at}/elements")
            return
        for number, item in enumerate(items):
            if isinstance(item, dict) and item.get("type") == "image":
                continue
            check.text(item, f"{at}/elements/{number}", 3000)
    elif kind == "input":
        check.text(block.get("label"), f"{at}/label", 2000, plain=True)
        if "element" not in block:
            check.fail("must provide an element", f"{at}/element")
        else:
            _element(check, block["element"], f"{at}/element", set())
    elif kind == "divider" and set(block) - {"type", "block_id"}:
        check.fail("divider takes no content", at)


def _element(check: _Check, element: Any, at: str, action_ids: set[str]) -> None:
    """Check one interactive element."""
    if not isinstance(element, dict) or element.get("type") not in ELEMENT_TYPES | {"image"}:
        check.fail("unsupported type", f"{at}/type")
        return
    action_id = element.get("action_id")
    check.length(action_id, f"{at}/action_id", 255)
    if isinstance(action_id, str):
        if action_id in action_ids:
            check.fail("action_id must be unique in the block", f"{at}/action_id")
        action_ids.add(action_id)
    if element["type"] == "button":
        check.text(element.get("text"), f"{at}/text", 75, plain=True)
        check.length(element.get("value"), f"{at}/value", 2000)
        check.length(element.get("url"), f"{at}/url", 3000)
        if element.get("style") not in (None, "primary", "danger"):
            check.fail("must be primary or danger", f"{at}/style")
    options = element.get("options")
    if options is not None and (not isinstance(options, list) or len(options) > 100):
        check.fail("must be at most 100 options", f"{at}/options")


def validate_view(view: Any) -> str:
    """Check a view payload and return its type; raise Slack's error when it is invalid."""
    if not isinstance(view, dict) or view.get("type") not in ("modal", "home"):
        raise ApiError("invalid_arguments",
                       response_metadata={"messages": ["[ERROR] invalid view type"]})
    kind = str(view["type"])
    check = _Check()
    if kind == "modal":
        check.text(view.get("title"), "/view/title", 24, plain=True)
        for key in ("submit", "close"):
            if key in view:
                check.text(view[key], f"/view/{key}", 24, plain=True)
        has_input = any(b.get("type") == "input" for b in view.get("blocks", ())
                        if isinstance(b, dict))
        if has_input and "submit" not in view:
            check.fail("submit is required when an input block is present", "/view/submit")
    check.length(view.get("callback_id"), "/view/callback_id", 255)
    check.length(view.get("private_metadata"), "/view/private_metadata", 3000)
    if check.problems:
        raise ApiError("invalid_arguments", response_metadata={"messages": check.problems})
    validate_blocks(view.get("blocks", []), kind)
    return kind
