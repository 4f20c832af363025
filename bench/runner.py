"""Running one client against a live emulator and collecting what it cost."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench.matrix import Client, RunSpace
from tests.blogger_emulator.process import EmulatorProcess

STDERR_TAIL_LINES = 15


@dataclass
class Result:
    """One client's row: the median of each metric over its runs, or why it failed."""

    client: Client
    runs: int = 0
    requests: float = 0
    by_route: dict[str, float] = field(default_factory=dict)
    rate_limited: float = 0  # 429s the emulator answered
    wall_s: float = 0
    cpu_s: float = 0
    peak_rss_mb: float = 0
    records: float = 0
    error: str | None = None

    @property
    def records_per_s(self) -> float:
        return self.records / self.wall_s if self.wall_s else 0.0


@dataclass
class _Run:
    requests: int
    by_route: dict[str, int]
    rate_limited: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    records: int


def run_once(client: Client, emulator: EmulatorProcess, work_dir: Path) -> _Run:
    space = RunSpace(emulator.credentials, emulator.credentials_file, work_dir)
    stderr_file = work_dir / "client-stderr.log"
    probe = [sys.executable, "-m", "bench.probe", client.output, str(stderr_file), "--"]
    emulator.reset()
    proc = subprocess.run(
        probe + client.command(space),
        cwd=work_dir,
        env=client.env(space),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    stats = emulator.stats()
    report = json.loads(proc.stdout) if proc.returncode == 0 and proc.stdout else {}
    if report.get("returncode") != 0 or report.get("records") is None:
        tail = stderr_file.read_text(encoding="utf-8", errors="replace").splitlines()
        detail = "\n".join(tail[-STDERR_TAIL_LINES:]) or proc.stderr.strip()
        code = report.get("returncode")
        raise RuntimeError(f"exit {code}, the end of its stderr:\n```\n{detail}\n```")
    return _Run(
        requests=stats["requests"],
        by_route=stats["counts"],
        rate_limited=stats["rate_limited"],
        wall_s=report["wall_s"],
        cpu_s=report["cpu_s"],
        peak_rss_mb=report["peak_rss_mb"],
        records=report["records"],
    )


def summarise(client: Client, runs: list[_Run]) -> Result:
    median = statistics.median
    routes = {route for run in runs for route in run.by_route}
    return Result(
        client=client,
        runs=len(runs),
        requests=median([r.requests for r in runs]),
        by_route={k: median([r.by_route.get(k, 0) for r in runs]) for k in sorted(routes)},
        rate_limited=median([r.rate_limited for r in runs]),
        wall_s=median([r.wall_s for r in runs]),
        cpu_s=median([r.cpu_s for r in runs]),
        peak_rss_mb=median([r.peak_rss_mb for r in runs]),
        records=median([r.records for r in runs]),
    )


def measure(
    clients: list[Client], emulator: EmulatorProcess, repeat: int, label: str
) -> dict[str, Result]:
    """Each client `repeat` times (slow ones once), interleaved so drift hits all alike."""
    runs: dict[str, list[_Run]] = {c.key: [] for c in clients}
    failed: dict[str, str] = {}
    for round_ in range(repeat):
        for client in clients:
            if client.key in failed or (client.slow and round_ > 0):
                continue
            with tempfile.TemporaryDirectory(prefix="tap-blogger-bench-") as tmp:
                try:
                    run = run_once(client, emulator, Path(tmp))
                except RuntimeError as exc:
                    failed[client.key] = str(exc)
                    print(f"  {label}: {client.label} failed, {exc}", file=sys.stderr)
                    continue
            runs[client.key].append(run)
            print(
                f"  {label}: {client.label} run {round_ + 1}: {run.wall_s:.2f} s wall, "
                f"{run.cpu_s:.2f} s CPU, {run.requests} requests",
                file=sys.stderr,
            )
    return {
        c.key: Result(c, error=failed[c.key]) if c.key in failed else summarise(c, runs[c.key])
        for c in clients
    }
