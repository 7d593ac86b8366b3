"""A broadcast's text, checked the way Telegram will take it: its HTML subset (tags,
attributes, entities, links) and a button's link; and the same text for a chat that shows no
formatting."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

MAX_TEXT = 3500  # Telegram takes 4096 characters; room for the rest of the message
# Telegram's HTML parse mode (https://core.telegram.org/bots/api#html-style): these tags,
# with these attributes, and nothing else.
_TAGS: dict[str, frozenset[str]] = {
    **{t: frozenset() for t in ("b", "strong", "i", "em", "u", "ins", "s", "strike", "del",
                                "tg-spoiler", "blockquote")},
    "code": frozenset({"class"}),  # class="language-…" inside <pre>
    "a": frozenset({"href"}), "pre": frozenset(), "span": frozenset({"class"}),
    "tg-emoji": frozenset({"emoji-id"}),
}
_CODE_CLASS = "language-"


class BroadcastError(ValueError):
    """A broadcast that cannot be sent as asked: the message says why."""


class _Checker(HTMLParser):
    """Walks the markup and raises at the first thing Telegram's HTML mode refuses.

    html.parser tokenises; the rules (which tags, which attributes, proper nesting) are
    Telegram's and are written here because no library knows them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.text: list[str] = []
        self.plain: list[str] = []  # the text for a chat without formatting: links spelled out
        self._links: list[tuple[str | None, int]] = []  # open <a>: its href, where its label starts

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        allowed = _TAGS.get(tag)
        if allowed is None:
            raise BroadcastError(f"<{tag}> is not in Telegram's HTML (use b, i, u, s, a, "
                                 "code, pre, blockquote, tg-spoiler)")
        for name, value in attrs:
            if name not in allowed:
                raise BroadcastError(f'<{tag}> takes no attribute "{name}"')
            if tag == "a" and not _link_ok(value or ""):
                raise BroadcastError(f'<a href="{value}">: links must be http(s) or tg:// '
                                     "URLs")
            if tag == "code" and not (value or "").startswith(_CODE_CLASS):
                raise BroadcastError('<code> takes only class="language-…"')
            if tag == "span" and value != "tg-spoiler":
                raise BroadcastError('<span> takes only class="tg-spoiler"')
        if tag == "a":
            self._links.append((dict(attrs).get("href"), len(self.plain)))
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            expected = f"</{self.open[-1]}>" if self.open else "no closing tag"
            raise BroadcastError(f"</{tag}> does not close the open tag ({expected} expected)")
        self.open.pop()
        if tag == "a" and self._links:
            href, start = self._links.pop()
            label = "".join(self.plain[start:]).strip()
            if href and label != href:
                self.plain.append(f" ({href})")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise BroadcastError(f"<{tag}/>: Telegram's HTML has no self-closing tags")

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        self.plain.append(data)

    def handle_comment(self, data: str) -> None:
        raise BroadcastError("comments (<!-- -->) are not allowed")

    def handle_decl(self, decl: str) -> None:
        raise BroadcastError(f"<!{decl}> is not allowed")

    def handle_pi(self, data: str) -> None:
        raise BroadcastError(f"<?{data}> is not allowed")

    def unknown_decl(self, data: str) -> None:
        raise BroadcastError(f"<![{data}]> is not allowed")


def _link_ok(url: str) -> bool:
    parts = urlsplit(url)
    return (parts.scheme in ("http", "https") and bool(parts.netloc)) or parts.scheme == "tg"


# Telegram knows these entities only ("All numerical HTML entities are supported. The API
# currently supports only the following named HTML entities: &lt;, &gt;, &amp; and &quot;",
# core.telegram.org/bots/api#html-style); any other "&" must be written &amp;.
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6}));")
_ENTITY_LIKE = re.compile(r"&#?[0-9A-Za-z]{0,32};?")


def _check_entities(text: str) -> None:
    for at in (m.start() for m in re.finditer("&", text)):
        found = _ENTITY.match(text, at)
        if found is None:
            shown = _ENTITY_LIKE.match(text, at)
            written = shown.group(0) if shown else "&"
            if written in ("&", "&;"):
                raise BroadcastError(f'a bare "&" at character {at + 1}: write &amp;')
            raise BroadcastError(f'"{written}" at character {at + 1} is no entity Telegram '
                                 "knows (only &lt; &gt; &amp; &quot; and numbers such as "
                                 "&#8364;): write &amp; for a plain &")
        number = found.group(1) or found.group(2)
        if number is not None:
            code = int(number, 10 if found.group(1) else 16)
            if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise BroadcastError(f'"{found.group(0)}" at character {at + 1} is no '
                                     "character")


def _checked(text: str) -> _Checker:
    if not text.strip():
        raise BroadcastError("the message is empty")
    if len(text) > MAX_TEXT:
        raise BroadcastError(f"the message is {len(text)} characters long; at most "
                             f"{MAX_TEXT} fit")
    if "<" in text.replace("&lt;", ""):
        # A bare "<" that starts no tag: html.parser would pass it on as text, Telegram
        # refuses it ("Unsupported start tag").
        for at, char in enumerate(text):
            if char == "<" and not (text[at + 1:at + 2].isalpha() or text[at + 1:at + 2] == "/"):
                raise BroadcastError(f'a bare "<" at character {at + 1}: write &lt;')
    _check_entities(text)
    checker = _Checker()
    checker.feed(text)
    checker.close()
    if checker.open:
        raise BroadcastError(f"<{checker.open[-1]}> is never closed")
    if checker.rawdata:  # an unfinished tag such as "<b"
        raise BroadcastError(f'an unfinished tag: "{checker.rawdata[:20]}"')
    if not "".join(checker.text).strip():
        raise BroadcastError("the message has no visible text")
    return checker


def check_html(text: str) -> str:
    """Return the visible text of a message in Telegram's HTML subset, or raise
    BroadcastError saying what Telegram would refuse."""
    return "".join(_checked(text).text)


def visible_text(text: str) -> str:
    """Return what a reader sees of a checked message (its text without the tags)."""
    try:
        return check_html(text)
    except BroadcastError:  # stored before a stricter check: show it as it is
        return text


def plain_text(text: str) -> str:
    """Return a checked message for a chat that shows no formatting: the visible text, each
    link's address after its label."""
    try:
        return "".join(_checked(text).plain)
    except BroadcastError:  # stored before a stricter check: show it as it is
        return text


def check_button_url(url: str) -> str:
    """Return a button's URL if Telegram takes it (http, https or tg), else raise."""
    url = url.strip()
    if len(url) > 2048 or not _link_ok(url):
        raise BroadcastError("the button's link must be an http(s) URL")
    return url


