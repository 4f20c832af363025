"""Run the emulator in the foreground until SIGTERM or SIGINT.

python -m tests.blogger_emulator --dataset default --port 8765
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from pathlib import Path

from .data import Dataset
from .server import RATE_LIMITERS, BloggerEmulator


def _write_credentials(path: Path, emu: BloggerEmulator) -> None:
    data = {
        **emu.oauth_config(),
        "api_key": emu.api_key,
        "blog_ids_public": emu.dataset.public_blog_ids(),
        "port": emu.port,
    }
    # Write then rename, so a process polling for the file never reads half of it.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.blogger_emulator", description=__doc__)
    parser.add_argument("--dataset", default="default", help="tiny, default, bench2, agency or big")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--rate-limit-rps", type=float, default=None)
    parser.add_argument(
        "--rate-limit-window",
        choices=sorted(RATE_LIMITERS),
        default="bucket",
        help="how the rate limit counts: token bucket as deep as the rate, per wall-clock "
        "second, or over any sliding second",
    )
    parser.add_argument(
        "--token-ttl", type=float, default=3600, help="access token lifetime, seconds"
    )
    parser.add_argument("--credentials-file", type=Path, default=None)
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    emu = BloggerEmulator(
        Dataset.named(args.dataset),
        port=args.port,
        latency_ms=args.latency_ms,
        rate_limit_rps=args.rate_limit_rps,
        rate_limit_window=args.rate_limit_window,
        token_ttl_s=args.token_ttl,
        verbose=args.verbose,
        expose_credentials=True,
    )
    try:
        if args.credentials_file:
            _write_credentials(args.credentials_file, emu)
        print(f"blogger emulator listening on {emu.base_url}", flush=True)
        while not stop.wait(3600):
            pass
    finally:
        emu.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
