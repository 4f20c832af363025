"""The README stays in step with what the tap itself says about its settings."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

from tap_blogger.tap import SETTINGS
from tests.conftest import REPO, tap_env


def _readme_block(name: str) -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    assert start in text and end in text, f"README.md lost its {name} markers"
    return text.split(start, 1)[1].split(end, 1)[0].strip().splitlines()


def test_readme_settings_table_matches_about_markdown() -> None:
    about = subprocess.run(
        [sys.executable, "-m", "tap_blogger", "--about", "--format=markdown"],
        capture_output=True,
        text=True,
        check=True,
        env=tap_env(),
        stdin=subprocess.DEVNULL,
    ).stdout.splitlines()
    header = about.index("## Settings") + 2
    own = set(SETTINGS.to_dict()["properties"])
    rows = [line for line in about[header:] if line.startswith("| ")]
    expected = about[header : header + 2] + [
        row for row in rows if row.split("|")[1].strip() in own
    ]
    assert len(expected) == len(own) + 2
    assert _readme_block("settings") == expected


def test_version_is_the_installed_distributions() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "tap_blogger", "--version"],
        capture_output=True,
        text=True,
        check=True,
        env=tap_env(),
        stdin=subprocess.DEVNULL,
    ).stdout
    assert shown.startswith(f"tap-blogger v{importlib.metadata.version('tap-blogger')},")
