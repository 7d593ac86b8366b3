"""A local, stateful stand-in for the part of Stripe's API that Portier uses."""

from sandbox.control import Sandbox
from sandbox.demo import seed_demo_catalog
from sandbox.errors import StripeError
from sandbox.server import SandboxServer

__all__ = ["Sandbox", "SandboxServer", "StripeError", "seed_demo_catalog"]
