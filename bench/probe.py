"""Run one client command and report what it cost, as one JSON line on stdout.

python -m bench.probe {singer,summary} STDERR_FILE -- COMMAND...

A fresh probe process per client run makes RUSAGE_CHILDREN cover exactly that client's process
tree: CPU is the tree's user+sys, peak RSS the largest process's. With `singer` the client's
stdout is a Singer message stream whose RECORD messages are counted; with `summary` the client
prints a final `{"records": N}` line itself. Stdlib only, so it starts fast under any Python.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from typing import IO

RECORD = b'"type":"RECORD"'  # unescaped quotes: cannot occur inside a JSON string value
CHUNK = 1 << 20


def count_records(stream: IO[bytes]) -> int:
    count, tail = 0, b""
    while chunk := stream.read(CHUNK):
        data = tail + chunk
        count += data.count(RECORD)
        # Keep a pattern-length tail, minus one byte so a match is never counted twice.
        tail = data[-(len(RECORD) - 1) :]
    return count


def summary_records(stream: IO[bytes]) -> int | None:
    lines = stream.read().decode("utf-8", "replace").strip().splitlines()
    try:
        return int(json.loads(lines[-1])["records"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def main(argv: list[str]) -> int:
    mode, stderr_path, separator, *command = argv
    if separator != "--" or mode not in ("singer", "summary") or not command:
        print(__doc__, file=sys.stderr)
        return 2
    with open(stderr_path, "wb") as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr
        )
        assert proc.stdout is not None
        records = count_records(proc.stdout) if mode == "singer" else summary_records(proc.stdout)
        returncode = proc.wait()
        wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = {
        "returncode": returncode,
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # kilobytes on Linux
        "records": records,
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
