"""Pacing for pushed messages: one global rate, and each channel's own limits per chat and
per group (Telegram: a message a second per chat, 20 a minute per group; Slack: about one a
second per channel).

Times are the event loop's clock (seconds). Global slots are spaced exactly `1/rate` apart
on a fixed schedule: a send that runs late (timer jitter, the process descheduled) does not
push every later one back; up to `catch_up` seconds of missed slots are made up, so in any
second at most rate × (1 + catch_up) messages leave (PTB's AIORateLimiter below smooths
that back to the rate). After an idle spell the schedule restarts at now, without credit.
"""

from __future__ import annotations

from collections import deque

from bot.channels import Pacing

Chat = tuple[str, str]  # (channel, chat id)


class Pace:
    """Decides when the next message may go out, and to which chats not yet.

    The global rate is shared by every channel (it is PORTIER_SEND_RATE); the per-chat and
    per-group limits are each channel's own (`Pacing`), registered under the channel's name.
    """

    def __init__(self, rate: float, *, per_chat: float = 1.0, group_per_minute: int = 20,
                 catch_up: float = 0.25) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self.default = Pacing(per_chat=per_chat, group_per_minute=group_per_minute)
        self.pacing: dict[str, Pacing] = {}  # by channel name
        self.catch_up = catch_up
        self.next_slot = 0.0
        self.paused_until = 0.0
        self._last: dict[Chat, float] = {}
        self._groups: dict[Chat, deque[float]] = {}

    def _of(self, channel: str) -> Pacing:
        return self.pacing.get(channel, self.default)

    def _group_full(self, chat: Chat, now: float) -> bool:
        sends = self._groups.get(chat)
        if sends is None:
            return False
        while sends and now - sends[0] >= 60.0:
            sends.popleft()
        if not sends:
            del self._groups[chat]
            return False
        return len(sends) >= self._of(chat[0]).group_per_minute

    def ready(self, channel: str, chat_id: str, now: float) -> bool:
        """Return whether the channel's chat may get a message now."""
        chat, pacing = (channel, chat_id), self._of(channel)
        last = self._last.get(chat)
        if last is not None and now - last < pacing.per_chat:
            return False
        return not (pacing.is_group(chat_id) and self._group_full(chat, now))

    def busy(self, now: float) -> set[str]:
        """Return the chat ids that may not get a message now (the claim skips them; chat ids
        of different apps do not collide: Telegram's are numbers, Slack's start with a
        letter)."""
        for chat in [c for c, t in self._last.items() if now - t >= self._of(c[0]).per_chat]:
            del self._last[chat]
        full = {c for c in list(self._groups) if self._group_full(c, now)}
        return {chat_id for _, chat_id in set(self._last) | full}

    def slot(self, now: float) -> float:
        """Take the next global slot; return how long to wait for it."""
        # Slightly late: keep the schedule (catch up). Idle for longer: start afresh at now,
        # without credit for the slots that went unused.
        start = self.next_slot if self.next_slot >= now - self.catch_up else now
        start = max(start, self.paused_until)
        self.next_slot = start + self.interval
        return max(0.0, start - now)

    def sent(self, channel: str, chat_id: str, now: float) -> None:
        """Record a message to the channel's chat."""
        chat = (channel, chat_id)
        self._last[chat] = now
        if self._of(channel).is_group(chat_id):
            self._groups.setdefault(chat, deque()).append(now)

    def pause(self, until: float) -> None:
        """Send nothing before `until` (the chat app asked to wait)."""
        self.paused_until = max(self.paused_until, until)
