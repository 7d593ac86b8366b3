"""One body limit for every route: an ASGI middleware that reads at most `max_body` bytes.

Starlette and uvicorn read a request body of any size into memory. Neither offers a limit
(uvicorn bounds only the header block, h11_max_incomplete_event_size), so it is written here,
once, in front of all routes. A declared Content-Length over the limit is refused before a
byte of the body is read; a chunked body (no length) is counted as it arrives and refused as
soon as it passes the limit. The body is read before the route runs and handed to it in one
piece; every route reads its whole body anyway.

The 413 is answered without closing the connection: uvicorn (h11 and httptools alike)
discards the rest of a body that arrives after the response is complete and keeps the
connection alive, so a client still sending its body reads the 413 instead of a reset.
"""

from __future__ import annotations

import logging

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

# Real payloads are far smaller: Stripe events run to tens of KB (Mozilla's subscriptions
# saw 22 KB and more, mozilla/fxa#8227, #8861), a Telegram update carries at most a
# 4096-character text and its entities. 512 KiB leaves ten times the room.
MAX_BODY = 512 * 1024


class BodyLimit:
    """Answer 413 to a request whose body is larger than `max_body` bytes."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the body up to the limit, then run the app with it (or answer 413)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await self._refuse(scope, receive, send, declared)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left; nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._refuse(scope, receive, send, size)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, size: int) -> None:
        # The path's first segment only (/card/<token> carries a bearer token), quoted and
        # cut short: it is whatever the client sent.
        route = "/" + scope.get("path", "/").lstrip("/").split("/", 1)[0][:40]
        log.warning("request body refused: %d bytes or more to %s %r, over the limit of %d",
                    size, scope.get("method"), route, self.max_body)
        response = JSONResponse({"error": f"body over {self.max_body} bytes"}, status_code=413)
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            # The server has checked it is a number (h11 refuses others with 400).
            return int(value) if value.isdigit() else None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """Return a receive callable that gives the read body once, then defers to the server
    (for the disconnect a streaming response waits for)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
