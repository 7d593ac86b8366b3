"""PTB's AIORateLimiter, with the outbox's sends begun at the last moment and never retried.

A reply goes through AIORateLimiter as PTB ships it: paced with everything else, retried
after a 429's retry_after. An outbox send passes `rate_limit_args=OutboxSend(issue)`
(ExtBot hands any such value to the limiter, `BaseRateLimiter.process_request`):

- `issue` runs inside the limiter, after every wait there (the global rate, a group's rate,
  the pause after another request's 429), right before the request leaves: it moves the
  notice to `sending` in the database, so a notice is `sending` only while its request is in
  the air;
- a 429 comes back to the outbox at once as RetryLater, the notice goes back to pending
  under its retry_after, instead of waiting in the limiter's retry sleep as `sending`. It is
  raised from inside the limited call, where AIORateLimiter (which catches only RetryAfter)
  lets it pass. A 5xx or network error is never retried by the limiter anyway.
"""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import AIORateLimiter
from telegram.warnings import PTBDeprecationWarning

from bot.outbox import RetryLater

Result = bool | dict[str, Any] | list[dict[str, Any]]


def retry_seconds(error: RetryAfter) -> float:
    """Return a 429's retry_after in seconds (PTB 22 deprecates reading it as an int)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value if isinstance(value, int) else value.total_seconds()


@dataclass(frozen=True, eq=False)
class OutboxSend:
    """rate_limit_args of an outbox send: what to do right before its request leaves."""

    issue: Callable[[], Awaitable[None]]


class Limiter(AIORateLimiter):
    """AIORateLimiter that begins outbox sends at the last moment and never retries them."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: Any,
    ) -> Result:
        """Pace the request; for an outbox send, issue it last and hand back a 429 at once."""
        if not isinstance(rate_limit_args, OutboxSend):
            return await super().process_request(callback, args, kwargs, endpoint, data,
                                                 rate_limit_args)
        issue = rate_limit_args.issue

        async def send(*call_args: Any, **call_kwargs: Any) -> Result:
            await issue()
            try:
                return await callback(*call_args, **call_kwargs)
            except RetryAfter as error:  # not retried here: the outbox waits, durably
                raise RetryLater(retry_seconds(error)) from None

        return await super().process_request(send, args, kwargs, endpoint, data, None)
