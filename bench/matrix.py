"""The clients compared: how each is started, and where it runs in the default matrix.

Every client is its own process (started by `bench.probe`). The Python ones read the emulator's
credentials file and print a final `{"records": N}` line; tap-blogger's Singer output is counted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import REPO

TAP = REPO / ".venv" / "bin" / "tap-blogger"
TAP_SETTINGS = ("client_id", "client_secret", "refresh_token", "api_url", "token_url")
SMALL_DATASET = "bench2"  # the one the slow dlt rows run on by default


def tap_default(setting: str) -> Any:
    """A setting's default, as `tap-blogger --about` declares it."""
    about = subprocess.run(
        [str(TAP), "--about", "--format=json"], capture_output=True, check=True, text=True
    )
    return json.loads(about.stdout)["settings"]["properties"][setting]["default"]


@dataclass(frozen=True)
class RunSpace:
    """Where one client run happens: the emulator's credentials and a scratch directory."""

    credentials: dict[str, Any]
    credentials_file: Path
    work_dir: Path


@dataclass(frozen=True)
class Client:
    key: str  # the name for --clients
    label: str  # the row name in the tables
    output: str  # "singer" (count RECORD messages) or "summary" (the client counts)
    command: Callable[[RunSpace], list[str]]
    datasets: frozenset[str] | None = None  # default matrix restriction; None = all
    latencies: frozenset[float] | None = None
    slow: bool = False  # run once, whatever --repeat
    needs_dlt: bool = False

    def env(self, space: RunSpace) -> dict[str, str]:
        # A developer's TAP_BLOGGER_* settings must not change what is measured.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_BLOGGER_")}
        env["PYTHONPATH"] = str(REPO)
        if self.needs_dlt:
            env.update(
                RUNTIME__DLTHUB_TELEMETRY="false",
                RUNTIME__LOG_LEVEL="WARNING",
                DLT_DATA_DIR=str(space.work_dir / "dlt-data"),
            )
        return env

    def runs_in_default_matrix(self, dataset: str, latency_ms: float) -> bool:
        return (self.datasets is None or dataset in self.datasets) and (
            self.latencies is None or latency_ms in self.latencies
        )


def tap_command(**settings: Any) -> Callable[[RunSpace], list[str]]:
    def command(space: RunSpace) -> list[str]:
        config = {key: space.credentials[key] for key in TAP_SETTINGS} | settings
        path = space.work_dir / "tap-config.json"
        path.write_text(json.dumps(config), encoding="utf-8")
        return [str(TAP), "--config", str(path)]

    return command


def floor_command(space: RunSpace) -> list[str]:
    return [sys.executable, "-m", "bench.clients.floor", str(space.credentials_file)]


def dlt_command(plan: str, mode: str) -> Callable[[RunSpace], list[str]]:
    def command(space: RunSpace) -> list[str]:
        credentials, work = str(space.credentials_file), str(space.work_dir)
        return [sys.executable, "-m", "bench.clients.dlt_rest", credentials, plan, mode, work]

    return command


SMALL = frozenset({SMALL_DATASET})
CLIENTS: tuple[Client, ...] = (
    Client("tap", "tap-blogger", "singer", tap_command()),
    Client("tap-seq", "tap-blogger (max_concurrency=1)", "singer", tap_command(max_concurrency=1)),
    # Without the default ceiling of requests_per_second, to show what it costs at 0 ms; with
    # latency the emulator's rate limit would answer it with 429s.
    Client(
        "tap-unthrottled",
        "tap-blogger (requests_per_second=0)",
        "singer",
        tap_command(requests_per_second=0),
        latencies=frozenset({0.0}),
    ),
    Client("floor", "floor (requests, sequential)", "summary", floor_command),
    Client(
        "dlt-best",
        "dlt best plan (extract)",
        "summary",
        dlt_command("best", "extract"),
        needs_dlt=True,
    ),
    Client(
        "dlt-best-load",
        "dlt best plan (duckdb)",
        "summary",
        dlt_command("best", "load"),
        datasets=SMALL,
        slow=True,
        needs_dlt=True,
    ),
    # About 11.8k sequential requests on bench2: 30 s at 0 ms, some 10 minutes at 50 ms.
    Client(
        "dlt-seed",
        "dlt as the seed (extract)",
        "summary",
        dlt_command("seed", "extract"),
        datasets=SMALL,
        latencies=frozenset({0.0}),
        slow=True,
        needs_dlt=True,
    ),
    Client(
        "dlt-seed-load",
        "dlt as the seed (duckdb)",
        "summary",
        dlt_command("seed", "load"),
        datasets=SMALL,
        latencies=frozenset({0.0}),
        slow=True,
        needs_dlt=True,
    ),
)
