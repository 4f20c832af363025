"""Benchmark tap-blogger against a `requests` floor and dlt's rest_api on the local emulator.

python -m bench [--datasets bench2 agency big] [--latencies 0 50] [--clients ...] [--repeat 3]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import REPO
from bench.matrix import CLIENTS, TAP, Client, tap_default
from bench.report import BIG_DATASET, Table, render_table, render_targets
from bench.runner import measure
from tests.blogger_emulator.process import EmulatorProcess

DATASETS = ("bench2", "agency", "big")
DEFAULT_OUTPUT = REPO / "bench" / "results" / "latest.md"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--latencies", nargs="+", type=float, default=[0.0, 50.0], metavar="MS")
    parser.add_argument(
        "--clients", nargs="+", choices=[c.key for c in CLIENTS], default=[c.key for c in CLIENTS]
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs per client, each metric's median is reported; runs of big with latency, "
        "and the slow dlt rows, run once (default: 3)",
    )
    parser.add_argument(
        "--rate-limit-rps",
        type=float,
        help="the emulator's rate limit for runs with latency, as Google has one; 0 = none "
        "(default: the tap's default requests_per_second)",
    )
    parser.add_argument(
        "--all-combinations",
        action="store_true",
        help="run every client on every dataset and latency; dlt as the seed alone then takes "
        "over 10 minutes on bench2 at 50 ms",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    return parser.parse_args(argv)


def selected_clients(args: argparse.Namespace, dataset: str, latency_ms: float) -> list[Client]:
    return [
        c
        for c in CLIENTS
        if c.key in args.clients
        and (args.all_combinations or c.runs_in_default_matrix(dataset, latency_ms))
    ]


def check_environment(args: argparse.Namespace) -> str | None:
    """Why the selected clients cannot run here, if they cannot."""
    if {"tap", "tap-seq", "tap-unthrottled"} & set(args.clients) and not TAP.exists():
        return f"{TAP} is missing: run `make venv` first"
    needs_dlt = any(c.needs_dlt for c in CLIENTS if c.key in args.clients)
    if needs_dlt and importlib.util.find_spec("dlt") is None:
        return f"dlt is not installed for {sys.executable}: run `make bench`"
    return None


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def describe_setup(args: argparse.Namespace) -> str:
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    return "\n".join(
        [
            f"- run: {time.strftime('%Y-%m-%d %H:%M')}, tap-blogger {commit or 'unknown'}, "
            f"Python {platform.python_version()}, dlt {_version('dlt')}, "
            f"{os.cpu_count()} CPUs",
            f"- runs per client: {args.repeat} (median of each metric), 1 on big with latency; "
            "dlt's duckdb rows and dlt as the seed run once",
            f"- emulator rate limit with latency: "
            f"{f'{args.rate_limit_rps:g} req/s' if args.rate_limit_rps else 'none'}",
            "- default matrix: dlt as the seed runs on bench2 at 0 ms only (about 11.8k "
            "sequential requests: some 10 minutes at 50 ms); the duckdb rows run on bench2 only"
            + (" (overridden by --all-combinations)" if args.all_combinations else ""),
            "- requests include the token request and 429 answers; CPU is user+sys of the "
            "client's process tree, peak RSS its largest process; wall includes interpreter "
            "start-up; (nx) is the ratio to the best row, 1.00x = best",
        ]
    )


def run_matrix(args: argparse.Namespace, work_dir: Path) -> list[Table]:
    tables = []
    for dataset in args.datasets:
        for latency_ms in args.latencies:
            clients = selected_clients(args, dataset, latency_ms)
            if not clients:
                continue
            rate_limit = args.rate_limit_rps if latency_ms > 0 else None
            # With latency a run of big takes half a minute: once is enough to see its time.
            repeat = 1 if latency_ms > 0 and dataset == BIG_DATASET else args.repeat
            label = f"{dataset} {latency_ms:g} ms"
            print(f"{label}: starting the emulator", file=sys.stderr)
            # Counted over any sliding second, the strictest of the emulator's ways.
            with EmulatorProcess(dataset, work_dir, latency_ms, rate_limit, "sliding") as emulator:
                results = measure(clients, emulator, repeat, label)
            tables.append(Table(dataset, latency_ms, rate_limit, results))
            print(render_table(tables[-1]) + "\n", file=sys.stderr)
    return tables


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if problem := check_environment(args):
        print(problem, file=sys.stderr)
        return 1
    if args.rate_limit_rps is None:  # a server that allows exactly what the tap asks by default
        args.rate_limit_rps = float(tap_default("requests_per_second"))
    with tempfile.TemporaryDirectory(prefix="tap-blogger-bench-") as tmp:
        tables = run_matrix(args, Path(tmp))
    report = "\n\n".join(
        [
            "# tap-blogger benchmark",
            describe_setup(args),
            *map(render_table, tables),
            "## Targets\n\n```\n" + render_targets(tables) + "\n```",
        ]
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report + "\n", encoding="utf-8")
    print(report)
    print(f"\n(written to {args.output})", file=sys.stderr)
    return 1 if any(r.error for t in tables for r in t.results.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
