"""Parse Telegram's HTML parse mode into plain text and message entities.

Telegram answers ``400 Bad Request: can't parse entities: …`` for markup it does not
support, so the fake does the same: an unescaped ``<`` or an unknown tag in a reply is a
bug the tests should see (https://core.telegram.org/bots/api#html-style).
"""

from __future__ import annotations

import html
import re
from typing import Any

_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)(\s[^>]*)?>")
_CHAR_REF = re.compile(r"&(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")
_ATTR = re.compile(r"""([a-zA-Z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")

_SIMPLE = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
}
_SUPPORTED = set(_SIMPLE) | {"a", "span", "blockquote", "tg-emoji"}


class HtmlError(ValueError):
    """Markup Telegram would refuse; the message is Telegram's description tail."""


def utf16_len(text: str) -> int:
    """Return the length of text in UTF-16 code units, the unit of entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Return the text a user sees and its entities, or raise HtmlError like Telegram."""
    out: list[str] = []
    offset = 0  # UTF-16 offset of the next character written to out
    stack: list[tuple[str, dict[str, Any] | None, int]] = []
    entities: list[dict[str, Any]] = []
    i = 0
    while i < len(source):
        char = source[i]
        if char == "<":
            match = _TAG.match(source, i)
            at = len(source[:i].encode())
            if match is None:
                raise HtmlError(f'Unsupported start tag "" at byte offset {at}')
            closing, name, attrs = match.group(1), match.group(2).lower(), match.group(3) or ""
            if closing:
                _close(stack, name, at, offset, entities)
            else:
                stack.append((name, _open(name, attrs, at, stack), offset))
            i = match.end()
            continue
        if char == "&" and (ref := _CHAR_REF.match(source, i)):
            char = html.unescape(ref.group(0))
            i = ref.end()
        else:
            i += 1
        out.append(char)
        offset += utf16_len(char)
    if stack:
        raise HtmlError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda entity: (entity["offset"], -entity["length"]))
    return "".join(out), entities


def _open(
    name: str, attrs: str, at: int, stack: list[tuple[str, dict[str, Any] | None, int]]
) -> dict[str, Any] | None:
    """Return the entity a start tag opens (None when it only decorates its parent)."""
    if name not in _SUPPORTED:
        raise HtmlError(f'Unsupported start tag "{name}" at byte offset {at}')
    values = {m.group(1).lower(): next(g for g in m.groups()[1:] if g is not None)
              for m in _ATTR.finditer(attrs)}
    values = {key: html.unescape(value) for key, value in values.items()}
    if name == "code" and stack and stack[-1][0] == "pre" and stack[-1][1] is not None:
        language = values.get("class", "")
        if language.startswith("language-"):
            stack[-1][1]["language"] = language.removeprefix("language-")
        return None
    if name in _SIMPLE:
        return {"type": _SIMPLE[name]}
    if name == "a":
        if "href" not in values:
            raise HtmlError(f'Can\'t find "href" attribute of tag "a" at byte offset {at}')
        return {"type": "text_link", "url": values["href"]}
    if name == "span":
        if values.get("class") != "tg-spoiler":
            raise HtmlError(f'Tag "span" must have class "tg-spoiler" at byte offset {at}')
        return {"type": "spoiler"}
    if name == "blockquote":
        kind = "expandable_blockquote" if "expandable" in attrs else "blockquote"
        return {"type": kind}
    return {"type": "custom_emoji", "custom_emoji_id": values.get("emoji-id", "")}


def _close(
    stack: list[tuple[str, dict[str, Any] | None, int]],
    name: str,
    at: int,
    offset: int,
    entities: list[dict[str, Any]],
) -> None:
    """Close the innermost open tag, which must be name, and keep its entity if not empty."""
    if not stack:
        raise HtmlError(f'Unexpected end tag at byte offset {at}')
    if stack[-1][0] != name:
        raise HtmlError(
            f'Unmatched end tag at byte offset {at}, expected "</{stack[-1][0]}>", '
            f'found "</{name}>"'
        )
    _, entity, start = stack.pop()
    if entity is not None and offset > start:
        entities.append({**entity, "offset": start, "length": offset - start})
