"""Shared fixtures: an isolated environment, the local Blogger emulator, and a tap runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import typing as t
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.blogger_emulator import BloggerEmulator, Dataset

REPO = Path(__file__).resolve().parent.parent

# A developer's own settings must never leak into a test run.
for _name in [n for n in os.environ if n.startswith("TAP_BLOGGER_")]:
    del os.environ[_name]


@pytest.fixture(scope="session")
def tiny_emulator() -> t.Iterator[BloggerEmulator]:
    """A read-only emulator shared by tests that neither mutate data nor inject faults."""
    with BloggerEmulator(Dataset.named("tiny")) as emu:
        yield emu


@pytest.fixture
def tiny(tiny_emulator: BloggerEmulator) -> BloggerEmulator:
    tiny_emulator.reset_counts()
    tiny_emulator.faults.clear()
    return tiny_emulator


@pytest.fixture
def fresh_tiny() -> t.Iterator[BloggerEmulator]:
    """An emulator of its own, for tests that mutate data, expire tokens or inject faults."""
    with BloggerEmulator(Dataset.named("tiny")) as emu:
        yield emu


@pytest.fixture(scope="session")
def default_emulator() -> t.Iterator[BloggerEmulator]:
    with BloggerEmulator(Dataset.named("default")) as emu:
        yield emu


@pytest.fixture
def fresh_default() -> t.Iterator[BloggerEmulator]:
    """The default dataset (a 1,200-post blog) for one test that mutates it or injects faults."""
    with BloggerEmulator(Dataset.named("default")) as emu:
        yield emu


@dataclass
class TapRun:
    returncode: int
    stdout: str
    stderr: str
    messages: list[dict] = field(default_factory=list)

    def records(self, stream: str) -> list[dict]:
        return [
            m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]

    def ids(self, stream: str) -> list[str]:
        return [r["id"] for r in self.records(stream)]

    @property
    def schemas(self) -> dict[str, dict]:
        return {m["stream"]: m for m in self.messages if m["type"] == "SCHEMA"}

    @property
    def states(self) -> list[dict]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def last_state(self) -> dict | None:
        return self.states[-1] if self.states else None

    def by_stream(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = defaultdict(list)
        for m in self.messages:
            if m["type"] == "RECORD":
                out[m["stream"]].append(m["record"])
        return out


def tap_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_BLOGGER_")}
    env.update(extra)
    return env


def run_tap(
    config: dict,
    *,
    state: dict | None = None,
    catalog: dict | None = None,
    args: t.Sequence[str] = (),
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> TapRun:
    """Run the real `tap-blogger` command line and parse what it writes."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "tap_blogger"]
        config_path = Path(tmp, "config.json")
        config_path.write_text(json.dumps(config))
        cmd += ["--config", str(config_path)]
        if state is not None:
            Path(tmp, "state.json").write_text(json.dumps(state))
            cmd += ["--state", str(Path(tmp, "state.json"))]
        if catalog is not None:
            Path(tmp, "catalog.json").write_text(json.dumps(catalog))
            cmd += ["--catalog", str(Path(tmp, "catalog.json"))]
        cmd += list(args)
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env or tap_env(),
            cwd=tmp,
            stdin=subprocess.DEVNULL,
        )
    messages = []
    for line in proc.stdout.split("\n"):  # not splitlines(): U+2028 may sit inside a record
        try:
            message = json.loads(line)
        except ValueError:
            continue  # --discover and --about print indented JSON, not messages
        if isinstance(message, dict) and "type" in message:
            messages.append(message)
    return TapRun(proc.returncode, proc.stdout, proc.stderr, messages)


def fast_retries(config: dict) -> dict:
    """Same behaviour, shorter waits: keeps fault tests quick."""
    return {**config, "retry_initial_delay_seconds": 0.05}


def run_tap_until_killed(config: dict, *, after_records: int, state: dict | None = None) -> TapRun:
    """Start the tap and SIGKILL it once it has written `after_records` records, as an
    orchestrator would; return what it had written up to then."""
    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp, "config.json")
        config_path.write_text(json.dumps(config))
        cmd = [sys.executable, "-m", "tap_blogger", "--config", str(config_path)]
        if state is not None:
            Path(tmp, "state.json").write_text(json.dumps(state))
            cmd += ["--state", str(Path(tmp, "state.json"))]
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            env=tap_env(),
            cwd=tmp,
        )
        messages: list[dict] = []
        records = 0
        assert proc.stdout is not None
        for line in proc.stdout:
            if not line.endswith("\n"):
                break  # a half-written line is what a killed process leaves: not a message
            message = json.loads(line)
            messages.append(message)
            records += message["type"] == "RECORD"
            if records >= after_records:
                proc.kill()
                break
        proc.wait(timeout=30)
        proc.stdout.close()
    return TapRun(proc.returncode, "", "", messages)
