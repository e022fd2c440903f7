"""Benchmarks: `make bench` runs bench.py; RESULTS.md keeps what it measured."""
