"""Fakes of the services Portier talks to over the network, served on 127.0.0.1."""

from .telegram import REGISTERED, SECRET_HEADER, FakeTelegram, NotDelivered
from .telegram_objects import BotMessage, FakeChat, FakeUser
from .telegram_server import ThreadedServer, serve
from .telegram_state import Call, Webhook

__all__ = [
    "REGISTERED", "SECRET_HEADER", "BotMessage", "Call", "FakeChat", "FakeTelegram",
    "FakeUser", "NotDelivered", "ThreadedServer", "Webhook", "serve",
]
