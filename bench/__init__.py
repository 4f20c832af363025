"""Benchmarks: tap-blogger against a plain `requests` floor and dlt's rest_api, on the emulator.

Run from the repository root with `python -m bench` (or `make bench`); see bench/README.md.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
