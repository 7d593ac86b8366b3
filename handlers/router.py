"""Commands, buttons and free text routed to the handler of the user's step."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from handlers.context import Ctx
from handlers.replies import Reply

CommandHandler = Callable[[Ctx, str], Awaitable[list[Reply]]]
ButtonHandler = Callable[[Ctx, re.Match[str]], Awaitable[list[Reply]]]
TextHandler = Callable[[Ctx, str, dict[str, object]], Awaitable[list[Reply]]]


@dataclass(frozen=True)
class Route:
    """A handler, whether it shows billing details (private chats only), whether only
    business admins may use it (anyone else is answered as for an unknown command), and
    whether it starts by reading the linked customer's mirror rows (the portal reads them
    with the chat user's profile, in one read: `Ctx.view`)."""

    handler: Callable[..., Awaitable[list[Reply]]]
    private: bool
    admin: bool = False
    mirror: bool = False


class Router:
    """Maps command names, anchored button patterns and pending answers to handlers."""

    def __init__(self) -> None:
        self.commands: dict[str, Route] = {}
        self.buttons: list[tuple[re.Pattern[str], Route]] = []
        self.answers: dict[str, Route] = {}

    def command(self, name: str, *, private: bool = True, admin: bool = False,
                mirror: bool = False) -> Callable[[CommandHandler], CommandHandler]:
        """Register the handler of `/name`."""
        def register(handler: CommandHandler) -> CommandHandler:
            self.commands[name] = Route(handler, private, admin, mirror)
            return handler
        return register

    def button(self, pattern: str, *, private: bool = True, admin: bool = False,
               mirror: bool = False) -> Callable[[ButtonHandler], ButtonHandler]:
        """Register the handler of button data matching the whole pattern."""
        def register(handler: ButtonHandler) -> ButtonHandler:
            self.buttons.append((re.compile(rf"^(?:{pattern})$"),
                                 Route(handler, private, admin, mirror)))
            return handler
        return register

    def answer(self, kind: str, *, private: bool = True
               ) -> Callable[[TextHandler], TextHandler]:
        """Register the handler of free text answering a pending question of `kind`."""
        def register(handler: TextHandler) -> TextHandler:
            self.answers[kind] = Route(handler, private)
            return handler
        return register

    def match_button(self, data: str) -> tuple[Route, re.Match[str]] | None:
        """Return the route and match for button data, if any pattern takes it."""
        for pattern, route in self.buttons:
            found = pattern.match(data)
            if found:
                return route, found
        return None


router = Router()
