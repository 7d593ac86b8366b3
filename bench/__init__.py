"""Benchmarks: a load driver for bots behind a webhook, and a bare echo bot as the baseline."""
