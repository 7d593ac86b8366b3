"""Pacing for pushed messages: one global rate, one message a second per chat, 20 a minute
per group (Telegram's broadcast limits, https://core.telegram.org/bots/faq#broadcasting).

Times are the event loop's clock (seconds). Global slots are spaced exactly `1/rate` apart
on a fixed schedule: a send that runs late (timer jitter, the process descheduled) does not
push every later one back; up to `catch_up` seconds of missed slots are made up, so in any
second at most rate × (1 + catch_up) messages leave (PTB's AIORateLimiter below smooths
that back to the rate). After an idle spell the schedule restarts at now, without credit.
"""

from __future__ import annotations

from collections import deque


def is_group(chat_id: str) -> bool:
    """Return whether a chat id names a group or channel (negative ids in Telegram)."""
    return chat_id.startswith("-")


class Pace:
    """Decides when the next message may go out, and to which chats not yet."""

    def __init__(self, rate: float, *, per_chat: float = 1.0, group_per_minute: int = 20,
                 catch_up: float = 0.25) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self.per_chat = per_chat
        self.group_limit = group_per_minute
        self.catch_up = catch_up
        self.next_slot = 0.0
        self.paused_until = 0.0
        self._last: dict[str, float] = {}
        self._groups: dict[str, deque[float]] = {}

    def _group_full(self, chat_id: str, now: float) -> bool:
        sends = self._groups.get(chat_id)
        if sends is None:
            return False
        while sends and now - sends[0] >= 60.0:
            sends.popleft()
        if not sends:
            del self._groups[chat_id]
            return False
        return len(sends) >= self.group_limit

    def ready(self, chat_id: str, now: float) -> bool:
        """Return whether the chat may get a message now."""
        last = self._last.get(chat_id)
        if last is not None and now - last < self.per_chat:
            return False
        return not (is_group(chat_id) and self._group_full(chat_id, now))

    def busy(self, now: float) -> set[str]:
        """Return the chats that may not get a message now."""
        for chat_id in [c for c, t in self._last.items() if now - t >= self.per_chat]:
            del self._last[chat_id]
        full = {c for c in list(self._groups) if self._group_full(c, now)}
        return set(self._last) | full

    def slot(self, now: float) -> float:
        """Take the next global slot; return how long to wait for it."""
        # Slightly late: keep the schedule (catch up). Idle for longer: start afresh at now,
        # without credit for the slots that went unused.
        start = self.next_slot if self.next_slot >= now - self.catch_up else now
        start = max(start, self.paused_until)
        self.next_slot = start + self.interval
        return max(0.0, start - now)

    def sent(self, chat_id: str, now: float) -> None:
        """Record a message to the chat."""
        self._last[chat_id] = now
        if is_group(chat_id):
            self._groups.setdefault(chat_id, deque()).append(now)

    def pause(self, until: float) -> None:
        """Send nothing before `until` (Telegram asked to wait)."""
        self.paused_until = max(self.paused_until, until)
