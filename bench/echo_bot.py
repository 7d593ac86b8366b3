"""A bare python-telegram-bot echo bot behind a Starlette webhook: the baseline benchmark.

Run ``python bench/echo_bot.py`` to serve it against the fake Bot API and print
``echo: N updates, X updates/s, p50 Y ms, p99 Z ms``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

if not __package__:  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import Response  # noqa: E402
from starlette.routing import Route  # noqa: E402
from telegram import Update  # noqa: E402
from telegram.ext import Application, ContextTypes, MessageHandler, filters  # noqa: E402
from telegram.request import BaseRequest  # noqa: E402

from bench.harness import LoadResult, run_load, serve  # noqa: E402
from tests.fakes.telegram import SECRET_HEADER, FakeTelegram  # noqa: E402

WEBHOOK_PATH = "/telegram"
EchoApplication = Application[Any, Any, Any, Any, Any, Any]


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answers a message with its own text."""
    message = update.effective_message
    if message is not None and message.text:
        await message.reply_text(message.text)


def build_echo_application(token: str, api_base: str,
                           request: BaseRequest | None = None) -> EchoApplication:
    """Build the echo bot: no updater (updates come from our route), concurrent updates;
    PTB's own HTTP client unless another `request` is given."""
    builder = (Application.builder().token(token).base_url(api_base)
               .updater(None).concurrent_updates(True))
    if request is not None:
        builder = builder.request(request)
    application = builder.build()
    application.add_handler(MessageHandler(filters.TEXT, echo))
    return application


def webhook_app(application: EchoApplication, secret: str) -> Starlette:
    """Return the Starlette app whose route feeds updates to application's update_queue."""

    async def telegram(request: Request) -> Response:
        # Telegram sends the secret given to setWebhook in this header on every update
        if not secrets.compare_digest(request.headers.get(SECRET_HEADER, ""), secret):
            return Response(status_code=403)
        await application.update_queue.put(Update.de_json(await request.json(), application.bot))
        return Response()

    return Starlette(routes=[Route(WEBHOOK_PATH, telegram, methods=["POST"])])


@contextlib.asynccontextmanager
async def running_echo_bot(fake: FakeTelegram, request: BaseRequest | None = None
                           ) -> AsyncIterator[tuple[str, str]]:
    """Run the echo bot against a started fake; yield its webhook URL and secret."""
    secret = secrets.token_urlsafe(24)
    application = build_echo_application(fake.token, fake.api_base, request)
    async with serve(webhook_app(application, secret)) as base, application:
        url = f"{base}{WEBHOOK_PATH}"
        await application.bot.set_webhook(url, secret_token=secret)
        await application.start()
        try:
            yield url, secret
        finally:
            await application.stop()


async def run_echo_benchmark(
    updates: int = 2000, users: int = 100, concurrency: int = 8
) -> LoadResult:
    """Start a fake Bot API and the echo bot, drive the load, and return the result."""
    with FakeTelegram() as fake:
        async with running_echo_bot(fake) as (url, secret):
            return await run_load(fake, url, secret, updates=updates, users=users,
                                  concurrency=concurrency)


def main(argv: list[str] | None = None) -> None:
    """Run the echo benchmark and print its one-line summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    result = asyncio.run(run_echo_benchmark(args.updates, args.users, args.concurrency))
    print(result.line("echo"))


if __name__ == "__main__":
    main()
