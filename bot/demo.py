"""`portier demo`: the Stripe sandbox, SQLite in a temporary folder and a console chat.

Everything runs offline in one process: the sandbox serves Stripe's API and hosted pages on
127.0.0.1, Portier serves its webhook route beside it, and the console chat talks to the
same handlers Telegram users get — and, as a Slack workspace's admin or member (`:as`), to
the same team handlers Slack users get (bot.console_slack).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from billing.migrate import upgrade
from bot.console import Console, Settle, script_lines, stdin_lines
from bot.console_slack import DemoWorkspace
from bot.logs import configure_logging
from bot.runtime import secret
from bot.service import Service, bind, running
from bot.settings import Settings, load_settings
from sandbox import Sandbox, SandboxServer, seed_demo_catalog
from sandbox.resources.coupons import create_coupon

WORKER_INTERVAL = 0.5
SETTLE_TIMEOUT = 10.0

CATALOG = """\
# The demo catalog: prices come from the Stripe sandbox's demo products.
[business]
name = "Acme Cloud"
support_url = "https://acme.example/help"
accent_color = "#4F46E5"

[[plans]]
key = "basic"
name = "Basic"
description = "For one person"
prices = ["basic_monthly", "basic_yearly"]
features = ["1 project", "Email support"]

[[plans]]
key = "pro"
name = "Pro"
description = "For growing teams"
prices = ["pro_monthly", "pro_yearly"]
features = ["10 projects", "Priority support"]

[team]
prices = ["team_seat_monthly"]
min_seats = 1
max_seats = 500

[changes]
downgrade = "period_end"

[cancel]
save_coupon = "STAY25"
pause_days = [30, 60]

[notices]
renewal_days = [7, 1]
card_expiry_days = 30
quiet_hours = "21:00-08:00"
"""

BANNER = """\
Portier demo: a chat with Acme Cloud's billing bot, all offline.
Stripe is a local sandbox in test mode (no real money, no network); the chat below uses
the same conversations Telegram users get.
Try: /start, then type a button's number. Stripe's pages open as a customer paying with a
test card ("1 decline" pays with one that declines). :time +31d moves Stripe's clock to the
next renewal, :card lists test cards, :help shows everything, :quit leaves.
Slack too: :as slack-admin plays a workspace admin (type /billing to start the team plan),
:as slack-member a member asking for a seat, :as telegram the customer again.
"""


def demo_settings(folder: Path, *, stripe_url: str, portier_url: str, api_key: str,
                  webhook_secret: str) -> Settings:
    """Build the demo's settings: sandbox keys, SQLite in `folder`, no Telegram or Slack."""
    return load_settings(
        database_url=f"sqlite:///{folder / 'portier.db'}",
        stripe_secret_key=api_key,
        stripe_webhook_secret=webhook_secret,
        stripe_api_base=stripe_url,
        public_url=portier_url,
        catalog_path=folder / "catalog.toml",
        link_secret=secrets.token_urlsafe(24),
        # Whatever the environment or .env says, the demo talks to no real chat service.
        telegram_bot_token=None,
        telegram_webhook_url=None,
        telegram_webhook_secret=None,
        slack_bot_token=None,
        slack_signing_secret=None,
    )


@contextlib.contextmanager
def _quiet_logs(settings: Settings) -> Iterator[None]:
    """Show only warnings while the demo runs, then put the caller's logging back."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    configure_logging(settings.log_format, settings.secrets(), level=logging.WARNING)
    try:
        yield
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
            handler.close()
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)


def _settler(sandbox: Sandbox, service: Service) -> Settle:
    async def settle() -> None:
        # Webhooks land on our server, which kicks the worker; one more run prints notices.
        await asyncio.to_thread(sandbox.wait_webhooks_idle, SETTLE_TIMEOUT)
        service.worker.kick()
        with contextlib.suppress(TimeoutError):
            await service.worker.idle(SETTLE_TIMEOUT)
    return settle


def add_save_coupon(sandbox: Sandbox) -> None:
    """Create the demo's save offer, STAY25: 25% off for 3 months."""
    with sandbox.store.lock:
        create_coupon(sandbox.store, {"id": "STAY25", "percent_off": "25",
                                      "duration": "repeating", "duration_in_months": "3",
                                      "name": "25% off for 3 months"})
    sandbox.sender.flush()


async def run_demo(script: str | None = None, out: TextIO = sys.stdout) -> None:
    """Run the offline demo: sandbox, Portier and a console chat, until input ends."""
    api_key = "sk_test_demo_" + secrets.token_hex(12)
    webhook_secret = "whsec_demo_" + secrets.token_hex(16)
    sandbox = Sandbox(api_key=api_key, webhook_secret=webhook_secret)
    stripe_server = SandboxServer(sandbox)
    stripe_url = await asyncio.to_thread(stripe_server.start)
    try:
        seed_demo_catalog(sandbox)
        add_save_coupon(sandbox)
        with tempfile.TemporaryDirectory(prefix="portier-demo-") as temp:
            folder = Path(temp)
            await asyncio.to_thread((folder / "catalog.toml").write_text, CATALOG, "utf-8")
            sock = bind("127.0.0.1", 0)
            portier_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            settings = demo_settings(folder, stripe_url=stripe_url, portier_url=portier_url,
                                     api_key=api_key, webhook_secret=webhook_secret)
            await asyncio.to_thread(upgrade, settings.database_url)
            with _quiet_logs(settings):
                await _chat(settings, sock, sandbox, stripe_url, script, out)
    finally:
        await asyncio.to_thread(stripe_server.stop)


async def _chat(settings: Settings, sock: socket.socket, sandbox: Sandbox, stripe_url: str,
                script: str | None, out: TextIO) -> None:
    async with running(settings, sock=sock, worker_interval=WORKER_INTERVAL) as service:
        sandbox.set_webhook(f"{service.url}/stripe/webhook",
                            secret(settings.stripe_webhook_secret))
        settle = _settler(sandbox, service)
        chat = Console(service.runtime.portal, out=out, language=settings.locale,
                       sandbox_url=stripe_url, settle=settle)
        await service.attach(chat)
        # A Slack workspace played at the same console: its people are personas (`:as`).
        await service.attach(DemoWorkspace(chat, language=settings.locale))
        out.write(BANNER + "\n")
        interactive = script is None and sys.stdin.isatty()
        lines = script_lines(script) if script else stdin_lines()
        await chat.run(lines, echo=not interactive)
        await settle()  # notices still on their way
        out.write("Bye: the sandbox and the demo's data are gone.\n")
