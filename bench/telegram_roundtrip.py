"""Benchmark: `/plan` round trips through Portier's Telegram webhook, against a bare echo bot.

Posts N `/plan` updates (default 2,000 from 200 linked users, 20 in flight) to Portier's
webhook as Telegram posts them and times each until its reply reaches the fake Bot API; then
drives a bare python-telegram-bot echo bot with the same harness in the same run, on PTB's
own HTTP client and on Portier's. The three take turns for `--rounds` rounds (default 5);
each bot's best round counts. Prints updates/s and p50/p99 latency, the ratios (targets
>= 0.8 on PTB's client, >= 0.6 on the same client) and Stripe requests per update (target 0:
in steady state `/plan` reads the local mirror, SPEC §8).

Before the load, the mirror is brought to steady state: the customers' events are all stored
(the sweep picks up those still queued in the sandbox) and processed.

The Stripe sandbox runs in its own process, as Stripe would be on another machine: sharing
Portier's interpreter would bill Stripe's work to Portier. The fake Bot API runs in-process
for both bots alike.

    python bench/telegram_roundtrip.py [--updates 2000] [--users 200] [--concurrency 20]
                                       [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
from sqlalchemy import func, select
from telegram.request import BaseRequest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.echo_bot import running_echo_bot  # noqa: E402
from bench.harness import LoadResult, run_load  # noqa: E402
from billing.links import link_customer  # noqa: E402
from billing.migrate import upgrade  # noqa: E402
from billing.models import StripeEvent  # noqa: E402
from billing.services import Billing  # noqa: E402
from billing.sweep import sweep_events  # noqa: E402
from bot.service import bind, running  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.telegram_http import AiohttpRequest  # noqa: E402
from tests.fakes.telegram import FakeTelegram  # noqa: E402
from tests.world import CATALOG  # noqa: E402

FIRST_USER = 700_000_000
STRIPE_KEY = "sk_test_sandbox"
WEBHOOK_SECRET = "whsec_bench"  # noqa: S105 - the local sandbox's own test secret
# The fake Bot API has no flood limit; Portier's limiter is set above the load so the figure
# measures Portier rather than Telegram's 30 messages a second for one bot.
SEND_RATE = 10_000


@contextlib.contextmanager
def sandbox_process(webhook_url: str) -> Iterator[str]:
    """Run `python -m sandbox` on a free port; yield its base URL."""
    probe = bind("127.0.0.1", 0)
    port = probe.getsockname()[1]
    probe.close()
    proc = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "sandbox", "--port", str(port), "--api-key", STRIPE_KEY,
         "--webhook-url", webhook_url, "--webhook-secret", WEBHOOK_SECRET],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("STRIPE_API_BASE="):
                yield line.strip().split("=", 1)[1]
                break
        else:
            raise RuntimeError("the sandbox did not start")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.asynccontextmanager
async def portier(folder: Path) -> AsyncIterator[tuple[FakeTelegram, str, object, str]]:
    """Start the fake Bot API, the sandbox process and Portier in webhook mode."""
    database = f"sqlite:///{folder / 'bench.db'}"
    await asyncio.to_thread(upgrade, database)
    (folder / "catalog.toml").write_text(CATALOG, encoding="utf-8")
    sock = bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    secret = secrets.token_urlsafe(16)
    with FakeTelegram() as fake, sandbox_process(f"{url}/stripe/webhook") as stripe_base:
        settings = load_settings(
            database_url=database, stripe_secret_key=STRIPE_KEY,
            stripe_webhook_secret=WEBHOOK_SECRET, stripe_api_base=stripe_base,
            telegram_bot_token=fake.token, telegram_api_base=fake.api_base,
            telegram_webhook_url=f"{url}/telegram/webhook", telegram_webhook_secret=secret,
            link_secret=secrets.token_hex(16), catalog_path=folder / "catalog.toml",
            public_url=url, send_rate=SEND_RATE, slack_bot_token=None,
            slack_signing_secret=None)
        async with running(settings, sock=sock) as service:
            yield fake, f"{url}/telegram/webhook", service, stripe_base


async def count_requests(stripe_base: str) -> int:
    """Return how many Stripe API requests the sandbox process has served."""
    async with httpx.AsyncClient() as client:
        return int((await client.get(f"{stripe_base}/_sandbox/requests")).json()["count"])


async def seed_checkout_users(service: object, users: int) -> None:
    """Make `users` customers as Checkout leaves them (the business's own sign-up page: the
    card on the subscription, none on the customer) and link each to a chat."""
    billing = service.runtime.billing  # type: ignore[attr-defined]
    v1 = billing.gateway.v1
    price = billing.prices.by_key["pro_monthly"].id
    customers = []
    async with httpx.AsyncClient() as http:
        for i in range(users):
            checkout = await v1.checkout.sessions.create_async({
                "mode": "subscription", "line_items": [{"price": price, "quantity": 1}],
                "customer_email": f"u{i}@example.com",
                "success_url": "https://shop.example/welcome"})
            paid = await http.post(checkout.url, data={"payment_method": "pm_card_visa"})
            assert paid.status_code == 303, paid.text
            done = await v1.checkout.sessions.retrieve_async(checkout.id)
            customers.append(str(done.customer))
    async with billing.db.session() as session:
        for i, customer_id in enumerate(customers):
            await link_customer(session, channel="telegram", user_id=str(FIRST_USER + i),
                                chat_id=str(FIRST_USER + i), customer_id=customer_id)
    await steady_state(billing)


async def compare(updates: int, users: int, concurrency: int, rounds: int
                  ) -> tuple[dict[str, list[LoadResult]], float]:
    """Drive Portier with `/plan` from linked users, then each echo bot with the same load,
    `rounds` times in turn (so that a slow spell of the machine hits all three alike); return
    every result and Portier's Stripe requests per update."""
    results: dict[str, list[LoadResult]] = {"portier": [], "echo": [], "same client": []}
    calls = 0
    with tempfile.TemporaryDirectory() as tmp:
        async with portier(Path(tmp)) as (fake, hook, service, stripe_base):
            await seed_checkout_users(service, users)
            for _ in range(rounds):
                before = await count_requests(stripe_base)
                results["portier"].append(await run_load(
                    fake, hook, settings_secret(service), updates=updates, users=users,
                    concurrency=concurrency, text="/plan", first_user_id=FIRST_USER,
                    warmup=0, timeout=30))
                calls += await count_requests(stripe_base) - before
                results["echo"].append(await echo_run(updates, users, concurrency))
                # Part of Portier's speed is its HTTP client, not its own work. The same echo
                # bot on that client shows what Portier's conversation costs beyond a bare bot.
                results["same client"].append(await echo_run(updates, users, concurrency,
                                                             AiohttpRequest()))
    return results, calls / (updates * rounds)


async def steady_state(billing: Billing) -> None:
    """Bring the mirror up to date: every event stored (the sweep catches deliveries still
    queued in the sandbox) and processed, as in a Portier that has been running a while."""
    while True:
        await sweep_events(billing)
        async with billing.db.session() as session:
            pending = await session.scalar(select(func.count()).select_from(StripeEvent).where(
                StripeEvent.status == "pending"))
        if not pending:
            return
        await asyncio.sleep(0.2)


def settings_secret(service: object) -> str:
    """Return the Telegram webhook secret Portier was started with."""
    value = service.runtime.settings.telegram_webhook_secret  # type: ignore[attr-defined]
    return str(value.get_secret_value())


async def echo_run(updates: int, users: int, concurrency: int,
                   request: BaseRequest | None = None) -> LoadResult:
    """Drive the bare echo bot with the same harness and load (PTB's own HTTP client, or
    `request`)."""
    with FakeTelegram() as fake:
        async with running_echo_bot(fake, request) as (url, secret):
            return await run_load(fake, url, secret, updates=updates, users=users,
                                  concurrency=concurrency, text="/plan",
                                  first_user_id=FIRST_USER, warmup=0, timeout=30)


def _best(results: list[LoadResult]) -> LoadResult:
    """The fastest of a bot's rounds: as `timeit` takes the best of its repeats, the one the
    machine's other work disturbed least."""
    return max(results, key=lambda result: result.updates_per_second)


def main(argv: list[str] | None = None) -> None:
    """Run the loads and print their figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    results, per_update = asyncio.run(compare(args.updates, args.users, args.concurrency,
                                              args.rounds))
    for n in range(args.rounds):
        print(f"round {n + 1}: " + ", ".join(
            f"{name} {runs[n].updates_per_second:.0f}/s" for name, runs in results.items()))
    ours, echo, same_client = (_best(results[name])
                               for name in ("portier", "echo", "same client"))
    print(ours.line("portier /plan"))
    print(echo.line("echo bot"))
    ratio = ours.updates_per_second / echo.updates_per_second
    print(f"ratio: portier/echo throughput {ratio:.2f}x (target >= 0.8, "
          f"{'met' if ratio >= 0.8 else 'missed'}), Stripe requests per update "
          f"{per_update:.2f} (target 0, {'met' if per_update == 0 else 'missed'})")
    print(same_client.line("reference: echo bot on Portier's aiohttp client"))
    same = ours.updates_per_second / same_client.updates_per_second
    print(f"ratio: portier/echo on the same client {same:.2f}x (target >= 0.6, "
          f"{'met' if same >= 0.6 else 'missed'})")


if __name__ == "__main__":
    main()
