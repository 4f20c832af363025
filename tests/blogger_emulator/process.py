"""The emulator as a child process, for the demo and the benchmark.

`python -m tests.blogger_emulator` on a free port; its credentials are read from the file it
writes, its control routes are reached over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 120  # generating the big dataset takes a few seconds on a busy machine


class EmulatorProcess:
    """`python -m tests.blogger_emulator` on a free port, until the `with` block ends."""

    def __init__(
        self,
        dataset: str,
        work_dir: Path,
        latency_ms: float = 0,
        rate_limit_rps: float | None = None,
        rate_limit_window: str = "bucket",
    ) -> None:
        self.credentials_file = work_dir / f"credentials-{dataset}-{latency_ms:g}ms.json"
        self.log_file = work_dir / f"emulator-{dataset}-{latency_ms:g}ms.log"
        self._command = [
            sys.executable,
            "-m",
            "tests.blogger_emulator",
            "--dataset",
            dataset,
            "--port",
            "0",
            "--latency-ms",
            f"{latency_ms:g}",
            "--credentials-file",
            str(self.credentials_file),
        ]
        if rate_limit_rps:
            self._command += ["--rate-limit-rps", f"{rate_limit_rps:g}"]
            self._command += ["--rate-limit-window", rate_limit_window]
        self._proc: subprocess.Popen[bytes] | None = None
        self.credentials: dict[str, Any] = {}

    def __enter__(self) -> EmulatorProcess:
        self.credentials_file.unlink(missing_ok=True)
        with self.log_file.open("wb") as log:
            self._proc = subprocess.Popen(
                self._command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.credentials_file.exists():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"emulator did not start; see {self.log_file}")
            time.sleep(0.1)
        self.credentials = json.loads(self.credentials_file.read_text(encoding="utf-8"))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.credentials['port']}"

    def _control(self, method: str, route: str) -> dict[str, Any]:
        request = urllib.request.Request(f"{self.base_url}/_emulator/{route}", method=method)
        with urllib.request.urlopen(request, timeout=30) as reply:
            return json.loads(reply.read())

    def reset(self) -> None:
        self._control("POST", "reset")

    def stats(self) -> dict[str, Any]:
        """`counts` by route (the token endpoint included), `requests`, `rate_limited` (429s)."""
        return self._control("GET", "stats")
