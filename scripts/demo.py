"""Demo: the bundled Blogger emulator -> `meltano run tap-blogger target-jsonl` (and PostgreSQL).

Run it with `make demo`. Steps:
  1. start `python -m tests.blogger_emulator --dataset default` on a free port;
  2. `meltano run --full-refresh tap-blogger target-jsonl` in the `demo` environment
     (JSONL files in output/), then `meltano run tap-blogger target-jsonl` again: incremental,
     from the state Meltano kept in .meltano/meltano.db (JSONL files in output/incremental/);
  3. if a PostgreSQL server is reachable, `meltano run --full-refresh tap-blogger target-postgres`
     into schema `blogger_demo`;
  4. print records per stream, requests the emulator served and wall time; stop the emulator.

PostgreSQL is used when TARGET_POSTGRES_HOST or PGHOST is set, or something listens on
127.0.0.1:5432. Connection settings: TARGET_POSTGRES_* if set, else PGHOST, PGPORT, PGUSER
(default postgres), PGPASSWORD, PGDATABASE (default postgres). DEMO_POSTGRES=0 skips it,
DEMO_POSTGRES=1 makes a failure to load it fatal.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.blogger_emulator.process import EmulatorProcess

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "output"
LOGS = OUTPUT / "logs"
STREAMS = ("users", "blogs", "posts", "pages", "comments")
DATASET = os.environ.get("DEMO_DATASET", "default")
PG_SCHEMA = "blogger_demo"


def meltano_bin() -> str:
    path = Path(os.environ.get("MELTANO_BIN") or REPO / ".venv-meltano/bin/meltano")
    if not path.exists():
        sys.exit(f"{path} is missing: run `make meltano` first")
    return str(path)


def base_env(emulator: EmulatorProcess) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_BLOGGER_")}
    creds = emulator.credentials
    env.update(
        MELTANO_ENVIRONMENT="demo",
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
        BLOGGER_EMULATOR_URL=emulator.base_url,
        TAP_BLOGGER_CLIENT_ID=creds["client_id"],
        TAP_BLOGGER_CLIENT_SECRET=creds["client_secret"],
        TAP_BLOGGER_REFRESH_TOKEN=creds["refresh_token"],
    )
    return env


def meltano_run(
    name: str, args: list[str], env: dict[str, str], emulator: EmulatorProcess
) -> tuple[bool, dict, float]:
    """Run `meltano run ARGS`; returns (ok, emulator request counts, wall seconds)."""
    log_path = LOGS / f"{name}.log"
    print(f"-> meltano run {' '.join(args)}   (log: {log_path.relative_to(REPO)})", flush=True)
    emulator.reset()
    started = time.monotonic()
    with log_path.open("w") as log:
        proc = subprocess.run(
            [meltano_bin(), "run", *args],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    wall = time.monotonic() - started
    stats = emulator.stats()
    if proc.returncode != 0:
        tail = log_path.read_text(errors="replace").splitlines()[-25:]
        print(f"   failed with exit code {proc.returncode}:", *tail, sep="\n   ", file=sys.stderr)
    return proc.returncode == 0, stats, wall


def jsonl_counts(folder: Path) -> dict[str, int]:
    counts = {}
    for stream in STREAMS:
        path = folder / f"{stream}.jsonl"
        counts[stream] = sum(1 for _ in path.open()) if path.exists() else 0
    return counts


def clear_jsonl(folder: Path) -> None:
    """target-jsonl appends: start each demo from empty files."""
    for stream in STREAMS:
        (folder / f"{stream}.jsonl").unlink(missing_ok=True)


def postgres_target() -> tuple[dict[str, str], str] | None:
    """TARGET_POSTGRES_* settings for a reachable server, and how it was found; or None."""
    choice = os.environ.get("DEMO_POSTGRES", "").strip().lower()
    if choice in ("0", "false", "no"):
        return None
    if os.environ.get("TARGET_POSTGRES_HOST"):
        return {}, "TARGET_POSTGRES_* settings"
    host = os.environ.get("PGHOST")
    port = os.environ.get("PGPORT", "5432")
    reason = "PG* variables"
    if not host:
        with socket.socket() as sock:
            sock.settimeout(1)
            if sock.connect_ex(("127.0.0.1", int(port))) != 0:
                return None
        host, reason = "127.0.0.1", f"a server on 127.0.0.1:{port}"
    settings = {
        "TARGET_POSTGRES_HOST": host,
        "TARGET_POSTGRES_PORT": port,
        "TARGET_POSTGRES_USER": os.environ.get("PGUSER", "postgres"),
        "TARGET_POSTGRES_DATABASE": os.environ.get("PGDATABASE", "postgres"),
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": PG_SCHEMA,
    }
    if os.environ.get("PGPASSWORD"):
        settings["TARGET_POSTGRES_PASSWORD"] = os.environ["PGPASSWORD"]
    return settings, reason


def postgres_counts(env: dict[str, str]) -> dict[str, int] | None:
    try:
        import psycopg
    except ImportError:
        return None
    schema = env.get("TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA", PG_SCHEMA)
    try:
        with psycopg.connect(
            host=env.get("TARGET_POSTGRES_HOST"),
            port=env.get("TARGET_POSTGRES_PORT", "5432"),
            user=env.get("TARGET_POSTGRES_USER"),
            password=env.get("TARGET_POSTGRES_PASSWORD"),
            dbname=env.get("TARGET_POSTGRES_DATABASE"),
            connect_timeout=10,
        ) as conn:
            return {
                stream: conn.execute(f'SELECT count(*) FROM "{schema}"."{stream}"').fetchone()[0]
                for stream in STREAMS
            }
    except psycopg.Error as err:
        print(f"   could not count rows: {err}", file=sys.stderr)
        return None


def main() -> int:
    LOGS.mkdir(parents=True, exist_ok=True)
    total_started = time.monotonic()

    # Stop the emulator however the demo ends.
    def _interrupted(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _interrupted)

    rows: list[tuple[str, dict[str, int] | None, dict, float]] = []
    failed = False
    with EmulatorProcess(DATASET, LOGS) as emulator:
        print(f"blogger emulator (dataset {DATASET!r}) at {emulator.base_url}")
        env = base_env(emulator)

        clear_jsonl(OUTPUT)
        full_env = {**env, "TARGET_JSONL_DESTINATION_PATH": str(OUTPUT)}
        ok, stats, wall = meltano_run(
            "full-jsonl", ["--full-refresh", "tap-blogger", "target-jsonl"], full_env, emulator
        )
        failed |= not ok
        rows.append(("full refresh -> jsonl", jsonl_counts(OUTPUT) if ok else None, stats, wall))

        if ok:
            incremental_dir = OUTPUT / "incremental"
            incremental_dir.mkdir(exist_ok=True)
            clear_jsonl(incremental_dir)
            inc_env = {**env, "TARGET_JSONL_DESTINATION_PATH": str(incremental_dir)}
            ok, stats, wall = meltano_run(
                "incremental-jsonl", ["tap-blogger", "target-jsonl"], inc_env, emulator
            )
            failed |= not ok
            counts = jsonl_counts(incremental_dir) if ok else None
            rows.append(("incremental -> jsonl", counts, stats, wall))

        target = postgres_target()
        if target is None:
            print("-> PostgreSQL: no server found (set PGHOST etc. to load one); skipped")
        else:
            settings, reason = target
            print(f"-> PostgreSQL: using {reason}")
            pg_env = {"TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": PG_SCHEMA, **env, **settings}
            ok, stats, wall = meltano_run(
                "full-postgres",
                ["--full-refresh", "tap-blogger", "target-postgres"],
                pg_env,
                emulator,
            )
            if not ok and os.environ.get("DEMO_POSTGRES", "").strip() in ("1", "true", "yes"):
                failed = True
            label = f"full refresh -> postgres ({pg_env['TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA']})"
            rows.append((label, postgres_counts(pg_env) if ok else None, stats, wall))

    print()
    header = f"{'run':<42}" + "".join(f"{s:>9}" for s in STREAMS) + f"{'requests':>10}{'wall':>8}"
    print(header)
    print("-" * len(header))
    for label, counts, stats, wall in rows:
        cells = "".join(f"{(counts or {}).get(s, '-'):>9}" for s in STREAMS)
        print(f"{label:<42}{cells}{stats.get('requests', 0):>10}{wall:>7.1f}s")
    print()
    for label, _counts, stats, _wall in rows:
        by_route = ", ".join(f"{k} {v}" for k, v in sorted(stats.get("counts", {}).items()))
        print(f"requests, {label}: {by_route}")
    print()
    print(
        f"JSONL: {OUTPUT.relative_to(REPO)}/*.jsonl (full), "
        f"{OUTPUT.relative_to(REPO)}/incremental/*.jsonl (incremental); "
        f"logs in {LOGS.relative_to(REPO)}/"
    )
    print(f"total wall time {time.monotonic() - total_started:.1f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
