"""Benchmark: Stripe webhook intake of a running Portier on SQLite, against a bare endpoint.

Posts N signed events (default 5,000, 20 in flight) to `POST /stripe/webhook` of `portier run`
(SQLite, its event worker running as in production) and times each until its 2xx; then posts
the same events to a bare Starlette endpoint that only verifies the signature (the baseline),
in the same run. Prints events/s and p50/p99 of both, their ratio and the targets
(>= 500 events/s, p99 <= 50 ms).

Portier, the baseline and the Stripe sandbox Portier needs at start-up each run in their own
process, as they would on their own machines; this process only signs and posts. Events are
`charge.succeeded` by default: a type a webhook subscribed to everything receives and Portier
does not act on, so the worker's cost is its bookkeeping (`--type` picks another).

    python bench/webhook_intake.py [--events 5000] [--concurrency 20] [--type charge.succeeded]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import percentile  # noqa: E402
from sandbox.webhooks import sign  # noqa: E402
from tests.world import CATALOG  # noqa: E402

STRIPE_KEY = "sk_test_sandbox"
WEBHOOK_SECRET = "whsec_bench_intake"  # noqa: S105 - a local test secret
TARGET_RATE, TARGET_P99_MS = 500, 50.0
OUTPUT: list[str] = []  # what the children printed after they started


def free_port() -> int:
    """Return a port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def child(args: list[str], ready: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run a Python child process; yield the rest of its first output line starting `ready`.

    The child's later output is read (and kept in `child.output`) by a thread until it ends:
    a pipe nobody reads fills up and then blocks every log line the child writes.
    """
    proc = subprocess.Popen(  # noqa: S603 - our own modules, fixed arguments
        [sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if ready in line:
                threading.Thread(target=_drain, args=(proc.stdout,), daemon=True).start()
                yield line.split(ready, 1)[1].strip()
                break
        else:
            raise RuntimeError(f"{args[:2]} did not start")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _drain(stream: IO[str]) -> None:
    for line in stream:
        OUTPUT.append(line)


def serve_baseline(port: int) -> None:
    """Serve the baseline: verify Stripe's signature on the raw body, answer 200."""
    import stripe
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def hook(request: Request) -> Response:
        payload = await request.body()
        try:
            stripe.WebhookSignature.verify_header(
                payload, request.headers.get("stripe-signature", ""), WEBHOOK_SECRET,
                stripe.Webhook.DEFAULT_TOLERANCE)
            json.loads(payload)
        except (ValueError, stripe.SignatureVerificationError):
            return JSONResponse({"error": "bad signature"}, status_code=400)
        return JSONResponse({"received": True})

    app = Starlette(routes=[Route("/stripe/webhook", hook, methods=["POST"])])
    print(f"baseline on http://127.0.0.1:{port}", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                lifespan="off")


def make_events(count: int, type_: str) -> list[tuple[bytes, str]]:
    """Build `count` distinct Stripe-shaped events of one type with their signatures."""
    now = int(time.time())
    bodies = []
    for n in range(count):
        event = {
            "id": f"evt_bench{n:07d}{secrets.token_hex(4)}", "object": "event",
            "api_version": "2026-10-28.endive", "created": now, "livemode": False,
            "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
            "type": type_,
            "data": {"object": {
                "id": f"ch_bench{n:07d}", "object": "charge", "amount": 2900,
                "amount_captured": 2900, "currency": "eur", "customer": f"cus_bench{n % 500}",
                "description": "Subscription update", "paid": True, "status": "succeeded",
                "metadata": {}, "payment_method": "pm_bench",
                "payment_method_details": {"type": "card", "card": {
                    "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034}},
                "created": now, "livemode": False}},
        }
        body = json.dumps(event, indent=2)
        bodies.append((body.encode(), sign(body, WEBHOOK_SECRET)))
    return bodies


async def post_all(url: str, events: list[tuple[bytes, str]],
                   concurrency: int) -> tuple[float, list[float]]:
    """Post every event with `concurrency` in flight; return seconds and latencies."""
    nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]  # no Nagle wait on the body
    queue = list(reversed(events))
    latencies: list[float] = []

    async def worker() -> None:
        transport = httpx.AsyncHTTPTransport(socket_options=nodelay)
        async with httpx.AsyncClient(transport=transport, timeout=30) as client:
            while queue:
                body, signature = queue.pop()
                started = time.perf_counter()
                response = await client.post(url, content=body, headers={
                    "Stripe-Signature": signature, "Content-Type": "application/json"})
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise RuntimeError(f"{url} answered {response.status_code}: {response.text}")

    warmup = [events[i] for i in range(min(50, len(events)))]
    queue, events = warmup, events[len(warmup):]
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    queue, latencies = list(reversed(events)), []
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


def line(name: str, count: int, seconds: float, latencies: list[float]) -> str:
    """Return one result line."""
    return (f"{name}: {count} events, {count / seconds:.0f} events/s, "
            f"p50 {percentile(latencies, 50) * 1000:.1f} ms, "
            f"p99 {percentile(latencies, 99) * 1000:.1f} ms")


def portier_env(folder: Path, stripe_base: str, port: int) -> dict[str, str]:
    """Return the environment of `portier run`: SQLite, the sandbox, no chat channel."""
    (folder / "catalog.toml").write_text(CATALOG, encoding="utf-8")
    keep = {k: v for k, v in os.environ.items() if not k.startswith(
        ("PORTIER_", "STRIPE_", "TELEGRAM_", "SLACK_", "DATABASE_"))}
    return keep | {
        "DATABASE_URL": f"sqlite:///{folder / 'intake.db'}", "STRIPE_SECRET_KEY": STRIPE_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, "STRIPE_API_BASE": stripe_base,
        "PORTIER_LINK_SECRET": secrets.token_hex(16), "PORTIER_PORT": str(port),
        "PORTIER_CATALOG": str(folder / "catalog.toml"), "PORTIER_LOG_FORMAT": "json"}


def main(argv: list[str] | None = None) -> None:
    """Run Portier's intake and the baseline with the same events; print both and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--type", default="charge.succeeded")
    parser.add_argument("--serve-baseline", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
        return
    events = make_events(args.events + 50, args.type)
    with tempfile.TemporaryDirectory() as tmp, \
            child(["-m", "sandbox", "--port", str(free_port()), "--api-key", STRIPE_KEY],
                  "STRIPE_API_BASE=") as stripe_base:
        port = free_port()
        env = portier_env(Path(tmp), stripe_base, port)
        with child(["-m", "bot.cli", "run"], "serving on ", env) as url:
            seconds, latencies = asyncio.run(post_all(f"{url}/stripe/webhook", events,
                                                      args.concurrency))
        ours = line("portier intake", args.events, seconds, latencies)
        port = free_port()
        with child([str(Path(__file__)), "--serve-baseline", str(port)], "baseline on ") as url:
            base_seconds, base_latencies = asyncio.run(post_all(
                f"{url}/stripe/webhook", events, args.concurrency))
    print(ours)
    print(line("bare verify endpoint", args.events, base_seconds, base_latencies))
    rate, p99 = args.events / seconds, percentile(latencies, 99) * 1000
    print(f"ratio: portier/bare throughput {base_seconds / seconds:.2f}x; targets "
          f">= {TARGET_RATE} events/s ({'met' if rate >= TARGET_RATE else 'missed'}), "
          f"p99 <= {TARGET_P99_MS:.0f} ms ({'met' if p99 <= TARGET_P99_MS else 'missed'})")


if __name__ == "__main__":
    main()
