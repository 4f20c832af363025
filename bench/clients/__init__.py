"""Comparison clients, each run as its own process: `python -m bench.clients.NAME CREDENTIALS ...`.

Each prints one final JSON line, `{"records": N}`.
"""
