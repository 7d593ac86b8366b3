"""How python-telegram-bot reaches the Bot API: over aiohttp instead of its default httpx.

Why not PTB's `HTTPXRequest`: per request, httpx and httpcore spend far more CPU than the
request itself (anyio locks and cancel scopes, and a scan of every pooled connection asking
each whether the server closed it). Measured against the same local server, aiohttp served
several times the requests a second for the same CPU (`bench/telegram_roundtrip.py` prints
Portier against a bare PTB bot on each). PTB supports other HTTP libraries through
`telegram.request.BaseRequest`; this is one, and the only thing it does is move bytes.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

POOL_SIZE = 256  # python-telegram-bot's default for the bot's requests
# python-telegram-bot's default timeouts, in seconds
READ, WRITE, CONNECT, POOL, MEDIA_WRITE = 5.0, 5.0, 5.0, 1.0, 20.0


def _given(value: Any, default: float | None) -> float | None:
    """Return a timeout PTB passed, or the default when it passed none."""
    return default if isinstance(value, type(BaseRequest.DEFAULT_NONE)) else value


def _body(request_data: RequestData | None) -> tuple[bytes | aiohttp.FormData | None,
                                                       dict[str, str]]:
    """Encode a Bot API call: a JSON body, or a multipart form when files go.

    PTB's own client sends a form, each value JSON-encoded on its own and the whole then
    percent-encoded; the Bot API takes application/json as well
    (https://core.telegram.org/bots/api#making-requests), which costs one `json.dumps`."""
    if request_data is None:
        return None, {}
    if not request_data.contains_files:
        return (json.dumps(request_data.parameters).encode(),
                {"Content-Type": "application/json"})
    form = aiohttp.FormData(request_data.json_parameters)
    for name, (filename, content, mime_type) in request_data.multipart_data.items():
        form.add_field(name, content, filename=filename, content_type=mime_type)
    return form, {}


class AiohttpRequest(BaseRequest):
    """A `BaseRequest` on one aiohttp session with a pool of keep-alive connections."""

    __slots__ = ("_pool_size", "_proxies", "_read_timeout", "_session")

    def __init__(self, pool_size: int = POOL_SIZE, read_timeout: float | None = READ) -> None:
        self._pool_size = pool_size
        self._read_timeout = read_timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[str, str | None] = {}  # by origin ("https://api.telegram.org")

    def _proxy(self, url: str) -> str | None:
        """Return the proxy the environment names for the URL's origin (HTTPS_PROXY,
        NO_PROXY… as PTB's httpx client honours them), looked up once per origin: aiohttp's
        own trust_env looks again on every request, which cost a sixth of the throughput."""
        origin = "/".join(url.split("/", 3)[:3])
        if origin not in self._proxies:
            scheme, _, host = origin.partition("://")
            bypass = urllib.request.proxy_bypass(host)
            self._proxies[origin] = None if bypass else urllib.request.getproxies().get(scheme)
        return self._proxies[origin]

    @property
    def read_timeout(self) -> float | None:
        """Return the default read timeout (PTB adds it to long polling's own timeout)."""
        return self._read_timeout

    async def initialize(self) -> None:
        """Open the session (in the running event loop, which aiohttp binds it to)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                timeout=aiohttp.ClientTimeout(total=None))
            self._proxies.clear()

    async def shutdown(self) -> None:
        """Close the session and its connections."""
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Send one Bot API request; return the status and body (PTB reads the rest)."""
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized")
        files = request_data is not None and request_data.contains_files
        read = _given(read_timeout, self._read_timeout)
        write = _given(write_timeout, MEDIA_WRITE if files else WRITE)
        connect = _given(connect_timeout, CONNECT)
        pool = _given(pool_timeout, POOL)
        parts = (read, write, connect, pool)
        # aiohttp has no write timeout: the total bounds the whole exchange instead.
        total = None if None in parts else sum(p for p in parts if p is not None)
        timeout = aiohttp.ClientTimeout(total=total, connect=pool, sock_connect=connect,
                                        sock_read=read)
        body, headers = _body(request_data)
        try:
            async with self._session.request(method, url, data=body,
                                             headers={"User-Agent": self.USER_AGENT, **headers},
                                             timeout=timeout,
                                             proxy=self._proxy(url)) as response:
                return response.status, await response.read()
        except aiohttp.ConnectionTimeoutError as error:
            raise TimedOut("Timed out connecting to Telegram; the request was not sent"
                           ) from error
        except TimeoutError as error:
            raise TimedOut from error
        except aiohttp.ClientError as error:
            raise NetworkError(f"aiohttp.{type(error).__name__}: {error}") from error
