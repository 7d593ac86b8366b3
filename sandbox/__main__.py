"""Run the Stripe sandbox alone: `python -m sandbox --port 12111`."""

from __future__ import annotations

import argparse
import threading

from sandbox import Sandbox, SandboxServer


def main(argv: list[str] | None = None) -> int:
    """Serve the sandbox with the demo catalog until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--api-key", default="sk_test_sandbox")
    parser.add_argument("--webhook-url", default=None, help="where to POST signed events")
    parser.add_argument("--webhook-secret", default="whsec_test")
    parser.add_argument("--public-url", default=None, help="base of hosted page URLs")
    parser.add_argument("--latency", type=float, default=0.0,
                        help="seconds each API request waits before it is served")
    args = parser.parse_args(argv)
    sb = Sandbox(args.api_key, args.webhook_secret, args.webhook_url, args.public_url)
    sb.seed_demo_catalog()
    sb.latency = args.latency
    server = SandboxServer(sb, host=args.host, port=args.port)
    base = server.start()
    print(f"Stripe sandbox on {base}")
    print(f"STRIPE_API_BASE={base}")
    print(f"STRIPE_SECRET_KEY={args.api_key}")
    print(f"STRIPE_WEBHOOK_SECRET={args.webhook_secret}")
    print("Advance time: curl -X POST -d seconds=2592000 " + base + "/_sandbox/advance")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
