"""End to end with real components: the tap, Meltano, target-jsonl, target-postgres, PostgreSQL.

The executables come from MELTANO_BIN, TARGET_JSONL_BIN and TARGET_POSTGRES_BIN (`make test`
sets them); without them the tests look in .venv-meltano/ and .venv-targets/. Meltano runs in a
temporary copy of the project (its own system database, so its own state, and no .env) that
borrows the plugin virtualenvs installed in the checkout's .meltano/.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import typing as t
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tap_blogger.tap import SETTINGS
from tests.blogger_emulator import BloggerEmulator, Dataset

pytest_plugins = ["tests.pg_server"]

REPO = Path(__file__).resolve().parent.parent
STREAMS = ("users", "blogs", "posts", "pages", "comments")
INCREMENTAL = {"posts": "updated", "comments": "published"}
PLUGINS = {
    "extractors": ["tap-blogger"],
    "loaders": ["target-jsonl", "target-postgres"],
}
# Variables that would change what Meltano or the plugins do if inherited from the caller.
FOREIGN_PREFIXES = ("TAP_BLOGGER_", "TARGET_JSONL_", "TARGET_POSTGRES_", "MELTANO_")
SCHEMA = "blogger_e2e"


# ---- executables ---------------------------------------------------------------------------


def _executable(env_var: str, fallback: Path, make_target: str) -> str:
    value = os.environ.get(env_var)
    path = Path(value) if value else fallback
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"{path} is missing: run `make {make_target}` (or `make test`), "
            f"or point {env_var} at the executable",
            pytrace=False,
        )
    return str(path)


@pytest.fixture(scope="session")
def meltano_bin() -> str:
    return _executable("MELTANO_BIN", REPO / ".venv-meltano/bin/meltano", "meltano")


@pytest.fixture(scope="session")
def target_jsonl_bin() -> str:
    return _executable("TARGET_JSONL_BIN", REPO / ".venv-targets/jsonl/bin/target-jsonl", "targets")


@pytest.fixture(scope="session")
def target_postgres_bin() -> str:
    fallback = REPO / ".venv-targets/postgres/bin/target-postgres"
    return _executable("TARGET_POSTGRES_BIN", fallback, "targets")


def _tap_command() -> list[str]:
    script = Path(sys.executable).parent / "tap-blogger"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "tap_blogger"]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_PREFIXES)}
    env.update(extra)
    return env


# ---- Meltano project -----------------------------------------------------------------------


def _plugin_executables() -> list[Path]:
    return [
        REPO / ".meltano" / kind / name / "venv" / "bin" / name
        for kind, names in PLUGINS.items()
        for name in names
    ]


class MeltanoProject:
    """A temporary Meltano project: the checkout's meltano.yml, its installed plugins, own state."""

    def __init__(self, root: Path, meltano: str) -> None:
        self.root = root
        self.meltano = meltano
        root.mkdir(parents=True)
        shutil.copy2(REPO / "meltano.yml", root / "meltano.yml")
        (root / ".meltano").mkdir()
        for kind in PLUGINS:
            (root / ".meltano" / kind).symlink_to(
                REPO / ".meltano" / kind, target_is_directory=True
            )

    def run(
        self, *blocks: str, emulator: BloggerEmulator, env: dict[str, str], timeout: float = 240
    ) -> subprocess.CompletedProcess[str]:
        config = emulator.oauth_config()
        full_env = _clean_env(
            MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
            MELTANO_ENVIRONMENT="test",
            BLOGGER_EMULATOR_URL=emulator.base_url,
            TAP_BLOGGER_CLIENT_ID=config["client_id"],
            TAP_BLOGGER_CLIENT_SECRET=config["client_secret"],
            TAP_BLOGGER_REFRESH_TOKEN=config["refresh_token"],
            TAP_BLOGGER_API_URL=config["api_url"],
            TAP_BLOGGER_TOKEN_URL=config["token_url"],
            **env,
        )
        # --no-install: the plugin folders are the checkout's; never reinstall into them from here.
        cmd = [self.meltano, "run", "--no-install", *blocks]
        proc = subprocess.run(
            cmd,
            cwd=self.root,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            pytest.fail(
                f"{' '.join(cmd)} exited {proc.returncode}\n"
                f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-6000:]}",
                pytrace=False,
            )
        return proc

    def state(self, state_id: str) -> dict:
        proc = subprocess.run(
            [self.meltano, "state", "get", state_id],
            cwd=self.root,
            env=_clean_env(MELTANO_SEND_ANONYMOUS_USAGE_STATS="false", MELTANO_ENVIRONMENT="test"),
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def installed_plugins(meltano_bin: str) -> None:
    """`meltano install` into the checkout's .meltano/ unless `make` did it already."""
    if all(path.exists() for path in _plugin_executables()):
        return
    proc = subprocess.run(
        [meltano_bin, "install"],
        cwd=REPO,
        env=_clean_env(MELTANO_SEND_ANONYMOUS_USAGE_STATS="false"),
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        pytest.fail(f"meltano install failed:\n{proc.stderr[-5000:]}", pytrace=False)
    missing = [str(p) for p in _plugin_executables() if not p.exists()]
    assert not missing, f"meltano install left out {missing}"


@pytest.fixture
def meltano_project(tmp_path: Path, meltano_bin: str, installed_plugins: None) -> MeltanoProject:
    return MeltanoProject(tmp_path / "project", meltano_bin)


# ---- helpers ---------------------------------------------------------------------------------


def _truth_ids(emu: BloggerEmulator) -> dict[str, list[str]]:
    return {stream: sorted(r["id"] for r in emu.dataset.truth(stream)) for stream in STREAMS}


def _read_jsonl(folder: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for stream in STREAMS:
        path = folder / f"{stream}.jsonl"
        assert path.exists(), f"no {path.name} in {sorted(p.name for p in folder.iterdir())}"
        out[stream] = [json.loads(line) for line in path.read_text().splitlines() if line]
    return out


def _assert_same_ids(records: dict[str, list[dict]], truth: dict[str, list[str]]) -> None:
    for stream in STREAMS:
        ids = [r["id"] for r in records[stream]]
        duplicates = [i for i, n in Counter(ids).items() if n > 1]
        assert not duplicates, f"{stream}: duplicate ids {duplicates[:5]}"
        assert sorted(ids) == truth[stream], f"{stream}: ids differ from the emulator's"


def _connect(pg: dict[str, t.Any]):
    import psycopg

    return psycopg.connect(
        host=pg["host"],
        port=pg["port"],
        user=pg["user"],
        password=pg["password"],
        dbname=pg["database"],
        connect_timeout=10,
    )


def _pg_env(pg: dict[str, t.Any], schema: str) -> dict[str, str]:
    return {
        "TARGET_POSTGRES_HOST": pg["host"],
        "TARGET_POSTGRES_PORT": str(pg["port"]),
        "TARGET_POSTGRES_USER": pg["user"],
        "TARGET_POSTGRES_PASSWORD": pg["password"],
        "TARGET_POSTGRES_DATABASE": pg["database"],
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
    }


def _table_stats(conn, schema: str) -> dict[str, tuple[int, int]]:
    """stream -> (rows, distinct ids)."""
    out = {}
    for stream in STREAMS:
        row = conn.execute(
            f'SELECT count(*), count(DISTINCT id) FROM "{schema}"."{stream}"'
        ).fetchone()
        out[stream] = (row[0], row[1])
    return out


# ---- Meltano -> PostgreSQL -------------------------------------------------------------------


def test_meltano_run_to_postgres_full_then_incremental(
    meltano_project: MeltanoProject, postgres_server: dict[str, t.Any]
) -> None:
    pg_env = _pg_env(postgres_server, SCHEMA)
    with BloggerEmulator(Dataset.named("tiny")) as emu:
        truth = _truth_ids(emu)
        meltano_project.run("tap-blogger", "target-postgres", emulator=emu, env=pg_env)
        first_counts = dict(emu.counts)

        with _connect(postgres_server) as conn:
            tables = {
                name
                for (name,) in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                    (SCHEMA,),
                )
            }
            assert set(STREAMS) <= tables, f"tables: {sorted(tables)}"

            stats = _table_stats(conn, SCHEMA)
            for stream in STREAMS:
                assert stats[stream] == (len(truth[stream]),) * 2, stream
                ids = sorted(r[0] for r in conn.execute(f'SELECT id FROM "{SCHEMA}"."{stream}"'))
                assert ids == truth[stream], stream

            for stream in STREAMS:
                key = conn.execute(
                    """
                    SELECT array_agg(a.attname::text ORDER BY a.attname)
                    FROM pg_index i
                    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                    WHERE i.indrelid = format('%%I.%%I', %s::text, %s::text)::regclass
                      AND i.indisprimary
                    """,
                    (SCHEMA, stream),
                ).fetchone()[0]
                assert key == ["id"], f"{stream}: primary key {key}"

            types = dict(
                conn.execute(
                    """
                    SELECT table_name || '.' || column_name, data_type
                    FROM information_schema.columns WHERE table_schema = %s
                    """,
                    (SCHEMA,),
                ).fetchall()
            )
            for column in ("posts.author", "posts.replies", "posts.blog", "comments.author"):
                assert types.get(column) in ("json", "jsonb"), f"{column}: {types.get(column)}"
            total_items = conn.execute(
                f"SELECT replies->>'totalItems' FROM \"{SCHEMA}\".posts LIMIT 1"
            ).fetchone()[0]
            assert total_items is not None

        # Edit two old posts, publish a new one, comment on an old post.
        blog_id = emu.dataset.owned_blog_ids()[0]
        old_posts = [p for p in emu.dataset.truth("posts", blog_ids=[blog_id])][-3:]
        new_titles = {}
        for post in old_posts[:2]:
            title = f"Edited: {post['title']}"
            emu.dataset.update_post(blog_id, post["id"], title=title)
            new_titles[post["id"]] = title
        new_post = emu.dataset.add_post(blog_id, title="Fresh from the oven")
        new_comment = emu.dataset.add_comment(blog_id, old_posts[2]["id"])
        truth = _truth_ids(emu)

        emu.reset_counts()
        second_started = dt.datetime.now(dt.timezone.utc)
        meltano_project.run("tap-blogger", "target-postgres", emulator=emu, env=pg_env)
        second_counts = dict(emu.counts)

    with _connect(postgres_server) as conn:
        stats = _table_stats(conn, SCHEMA)
        for stream in STREAMS:
            rows, distinct = stats[stream]
            assert rows == distinct, f"{stream}: {rows - distinct} duplicate rows"
            assert rows == len(truth[stream]), stream
        titles = dict(
            conn.execute(
                f'SELECT id, title FROM "{SCHEMA}".posts WHERE id = ANY(%s)',
                ([*new_titles, new_post["id"]],),
            ).fetchall()
        )
        assert titles == {**new_titles, new_post["id"]: "Fresh from the oven"}
        found = conn.execute(
            f'SELECT id FROM "{SCHEMA}".comments WHERE id = %s',
            (new_comment["id"],),
        ).fetchone()
        assert found is not None, "the new comment was not loaded"
        # Posts written by the second run: the changed ones plus the lookback window, not all.
        rewritten = conn.execute(
            f'SELECT count(*) FROM "{SCHEMA}".posts WHERE _sdc_batched_at >= %s',
            (second_started.replace(tzinfo=None),),
        ).fetchone()[0]
        assert 3 <= rewritten <= len(truth["posts"]) // 3, rewritten

    # Incremental: no more list requests than the full run, one page per blog at most.
    blogs = len(truth["blogs"])
    assert second_counts.get("posts.list", 0) <= min(first_counts["posts.list"], blogs)
    assert sum(second_counts.values()) <= sum(first_counts.values())

    state = meltano_project.state("test:tap-blogger-to-target-postgres")
    bookmarks = state["singer_state"]["bookmarks"]
    for stream, key in INCREMENTAL.items():
        partitions = bookmarks[stream]["partitions"]
        assert len(partitions) == blogs, stream
        assert all(p["replication_key"] == key for p in partitions), stream


# ---- Meltano -> JSONL ------------------------------------------------------------------------


def test_meltano_run_to_jsonl(meltano_project: MeltanoProject, tmp_path: Path) -> None:
    out = tmp_path / "jsonl"
    with BloggerEmulator(Dataset.named("tiny")) as emu:
        meltano_project.run(
            "tap-blogger",
            "target-jsonl",
            emulator=emu,
            env={"TARGET_JSONL_DESTINATION_PATH": str(out)},
        )
        _assert_same_ids(_read_jsonl(out), _truth_ids(emu))
    state = meltano_project.state("test:tap-blogger-to-target-jsonl")
    assert set(INCREMENTAL) <= set(state["singer_state"]["bookmarks"])


# ---- plain Singer pipe -------------------------------------------------------------------------


def _pipe(
    tap_config: dict, target: str, target_config: dict, workdir: Path
) -> subprocess.CompletedProcess[str]:
    """`tap-blogger --config tap.json | TARGET --config target.json`; returns the target's run."""
    tap_path, target_path = workdir / "tap.json", workdir / "target.json"
    tap_path.write_text(json.dumps(tap_config))
    target_path.write_text(json.dumps(target_config))
    env = _clean_env()
    tap_log, target_log = workdir / "tap.log", workdir / "target.log"
    with tap_log.open("w") as tap_err, target_log.open("w") as target_err:
        tap = subprocess.Popen(
            [*_tap_command(), "--config", str(tap_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=tap_err,
            env=env,
            cwd=workdir,
        )
        assert tap.stdout is not None
        try:
            proc = subprocess.run(
                [target, "--config", str(target_path)],
                stdin=tap.stdout,
                stdout=subprocess.PIPE,
                stderr=target_err,
                env=env,
                cwd=workdir,
                timeout=180,
                text=True,
            )
        finally:
            tap.stdout.close()
            tap_rc = tap.wait(timeout=60)
    assert tap_rc == 0, tap_log.read_text()[-4000:]
    assert proc.returncode == 0, target_log.read_text()[-4000:]
    return proc


def test_plain_pipe_tap_to_target_jsonl(target_jsonl_bin: str, tmp_path: Path) -> None:
    out = tmp_path / "jsonl"
    with BloggerEmulator(Dataset.named("tiny")) as emu:
        target = _pipe(
            emu.oauth_config(),
            target_jsonl_bin,
            {"destination_path": str(out), "do_timestamp_file": False},
            tmp_path,
        )
        _assert_same_ids(_read_jsonl(out), _truth_ids(emu))

    # target-jsonl echoes the last state it received: the tap's bookmarks.
    last_state = json.loads(target.stdout.strip().splitlines()[-1])
    assert set(INCREMENTAL) <= set(last_state["bookmarks"])


def test_plain_pipe_tap_to_target_postgres(
    target_postgres_bin: str, postgres_server: dict[str, t.Any], tmp_path: Path
) -> None:
    schema = "blogger_pipe"
    target_config = {**postgres_server, "default_target_schema": schema}
    with BloggerEmulator(Dataset.named("tiny")) as emu:
        target = _pipe(emu.oauth_config(), target_postgres_bin, target_config, tmp_path)
        truth = _truth_ids(emu)
    with _connect(postgres_server) as conn:
        for stream in STREAMS:
            ids = sorted(r[0] for r in conn.execute(f'SELECT id FROM "{schema}"."{stream}"'))
            assert ids == truth[stream], stream
    last_state = json.loads(target.stdout.strip().splitlines()[-1])
    assert set(INCREMENTAL) <= set(last_state["bookmarks"])


# ---- meltano.yml against the tap ---------------------------------------------------------------


def test_meltano_yml_declares_every_tap_setting() -> None:
    about = json.loads(
        subprocess.run(
            [*_tap_command(), "--about", "--format=json"],
            capture_output=True,
            text=True,
            check=True,
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            timeout=60,
        ).stdout
    )
    project = yaml.safe_load((REPO / "meltano.yml").read_text())
    (tap,) = [p for p in project["plugins"]["extractors"] if p["name"] == "tap-blogger"]
    declared = {s["name"]: s for s in tap["settings"]}
    builtin = {"faker_config", "flattening_max_key_length", "flattening_separator"}
    own = set(SETTINGS.to_dict()["properties"])

    def kind_of(spec: dict) -> str:
        types = spec.get("type", [])
        types = [types] if isinstance(types, str) else [x for x in types if x != "null"]
        if "string" in types and spec.get("format") == "date-time":
            return "date_iso8601"
        return {"number": "decimal"}.get(types[0], types[0]) if types else "object"

    for name, spec in about["settings"]["properties"].items():
        if name in builtin:
            continue
        assert name in declared, f"meltano.yml does not declare tap setting {name!r}"
        assert declared[name].get("kind") == kind_of(spec), name
        assert bool(declared[name].get("sensitive")) == bool(spec.get("secret")), name
        if "value" in declared[name] or "default" in spec:
            assert declared[name].get("value") == spec.get("default"), f"{name}: default differs"
        if name in own:  # the SDK's built-in settings carry Meltano's own wording
            assert declared[name].get("description") == spec["description"], name
    assert set(about["capabilities"]) <= set(tap["capabilities"])
