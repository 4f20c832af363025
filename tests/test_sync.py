"""A full sync against the emulator: every live record once, valid, with the fewest requests."""

from __future__ import annotations

import datetime as dt
import json
import math

import jsonschema
import pytest

from tap_blogger.records import parse_timestamp
from tests.conftest import run_tap

STREAMS = ("users", "blogs", "posts", "pages", "comments")


def _pages_needed(count: int) -> int:
    return max(1, math.ceil(count / 500))


@pytest.fixture(scope="module")
def default_run(default_emulator):
    default_emulator.reset_counts()
    result = run_tap(default_emulator.oauth_config())
    assert result.returncode == 0, result.stderr[-3000:]
    return result, dict(default_emulator.counts), default_emulator


def test_each_live_record_is_emitted_exactly_once(default_run):
    result, _, emu = default_run
    for stream in STREAMS:
        truth = sorted(r["id"] for r in emu.dataset.truth(stream))
        emitted = result.ids(stream)
        assert len(emitted) == len(set(emitted)), f"{stream}: duplicates"
        assert sorted(emitted) == truth, stream
    assert len(result.ids("posts")) > 1200  # the big blog spans several 500-item pages


def test_each_stream_has_one_schema_message_before_its_records(default_run):
    result, _, _ = default_run
    for stream in STREAMS:
        kinds = [m["type"] for m in result.messages if m.get("stream") == stream]
        assert kinds.count("SCHEMA") == 1, stream
        assert kinds.index("SCHEMA") < kinds.index("RECORD"), stream


def test_every_record_is_valid_against_its_schema(default_run):
    result, _, _ = default_run
    checker = jsonschema.Draft7Validator.FORMAT_CHECKER
    for stream, message in result.schemas.items():
        assert message["key_properties"] == ["id"]
        validator = jsonschema.Draft7Validator(message["schema"], format_checker=checker)
        for record in result.records(stream):
            validator.validate(record)


def test_request_plan_is_minimal(default_run):
    _, counts, emu = default_run
    blogs = emu.dataset.truth("blogs")
    posts_pages = sum(
        _pages_needed(len(emu.dataset.truth("posts", blog_ids=[b["id"]]))) for b in blogs
    )
    pages_pages = sum(
        _pages_needed(len(emu.dataset.truth("pages", blog_ids=[b["id"]]))) for b in blogs
    )
    comment_pages = sum(
        _pages_needed(len(emu.dataset.truth("comments", blog_ids=[b["id"]]))) for b in blogs
    )
    assert counts.get("token") == 1
    assert counts.get("users.get") == 1
    assert counts.get("blogs.listByUser") == 1
    assert counts.get("posts.list") == posts_pages
    assert counts.get("pages.list") == pages_pages
    assert counts.get("comments.listByBlog") == comment_pages
    assert not counts.get("posts.get")
    assert not counts.get("comments.list")


def test_list_requests_ask_for_500_items(default_run):
    _, _, emu = default_run
    lists = [
        r for r in emu.requests if r.route.endswith(".list") or r.route == "comments.listByBlog"
    ]
    assert lists
    assert all(r.query.get("maxResults") == ["500"] for r in lists)


def test_parent_ids_are_top_level(default_run):
    result, _, _ = default_run
    blog_ids = set(result.ids("blogs"))
    post_ids = set(result.ids("posts"))
    for post in result.records("posts"):
        assert post["blog_id"] == post["blog"]["id"]
        assert post["blog_id"] in blog_ids
    for page in result.records("pages"):
        assert page["blog_id"] == page["blog"]["id"]
    for comment in result.records("comments"):
        assert comment["blog_id"] == comment["blog"]["id"]
        assert comment["post_id"] == comment["post"]["id"]
        assert comment["post_id"] in post_ids


def test_int64_strings_become_integers_and_timestamps_utc(default_run):
    result, _, emu = default_run
    truth = {p["id"]: p for p in emu.dataset.truth("posts")}
    offsets = set()
    for post in result.records("posts"):
        wire = truth[post["id"]]
        assert isinstance(post["replies"]["totalItems"], int)
        assert post["replies"]["totalItems"] == int(wire["replies"]["totalItems"])
        for key in ("published", "updated"):
            emitted = dt.datetime.fromisoformat(post[key])
            assert emitted.utcoffset() == dt.timedelta(0)
            assert emitted == parse_timestamp(wire[key])
            offsets.add(parse_timestamp(wire[key]).utcoffset())
    assert len(offsets) > 1  # the emulator really sent local offsets


def test_absent_fields_stay_absent(default_run):
    result, _, emu = default_run
    truth = {p["id"]: p for p in emu.dataset.truth("posts")}
    for post in result.records("posts"):
        # `images` is asked for with fetchImages; the truth renders the default listing
        assert set(post) - {"blog_id", "images"} == set(truth[post["id"]]) - {"images"}
        assert None not in post.values()


def test_state_is_per_blog(default_run):
    result, _, emu = default_run
    partitions = result.last_state["bookmarks"]["posts"]["partitions"]
    with_posts = {b["id"] for b in emu.dataset.truth("blogs") if b["posts"]["totalItems"]}
    assert {p["context"]["blog_id"] for p in partitions} >= with_posts
    for partition in partitions:
        assert "progress_markers" not in partition


def _as_written(result) -> list[dict]:
    """The messages of a run without what only the clock decides."""
    assert result.returncode == 0, result.stderr[-2000:]
    return [{k: v for k, v in m.items() if k != "time_extracted"} for m in result.messages]


@pytest.mark.parametrize("credentials", ["oauth_config", "api_key_config"])
def test_a_concurrent_run_writes_exactly_what_a_sequential_run_writes(tiny, credentials):
    # Prefetching reads each blog's listings ahead of the sync; the output, STATE messages
    # included, must still be what a sequential run writes, message for message. With an API
    # key the blogs are configured, not listed, and comments are read per post.
    config = getattr(tiny, credentials)()
    full = [_as_written(run_tap({**config, "max_concurrency": w})) for w in (1, 8)]
    assert full[0] == full[1]
    # Incremental: the bookmarks decide each listing's query and where its paging stops.
    state = [m["value"] for m in full[0] if m["type"] == "STATE"][-1]
    tiny.reset_counts()
    sequential = _as_written(run_tap({**config, "max_concurrency": 1}, state=state))
    requests = dict(tiny.counts)
    tiny.reset_counts()
    assert _as_written(run_tap({**config, "max_concurrency": 8}, state=state)) == sequential
    assert dict(tiny.counts) == requests


def _catalog_selecting(*names: str) -> dict:
    result = run_tap({}, args=["--discover"])
    catalog = json.loads(result.stdout)
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in names
    return catalog


@pytest.mark.parametrize("selected", [("comments",), ("posts", "pages")])
def test_only_selected_streams_are_emitted_and_requested(tiny, selected):
    result = run_tap(tiny.oauth_config(), catalog=_catalog_selecting(*selected))
    assert result.returncode == 0, result.stderr[-2000:]
    assert {m["stream"] for m in result.messages if m["type"] == "RECORD"} == set(selected)
    for stream in selected:
        assert sorted(result.ids(stream)) == sorted(r["id"] for r in tiny.dataset.truth(stream))
    routes = {"posts": "posts.list", "pages": "pages.list", "comments": "comments.listByBlog"}
    for stream, route in routes.items():
        assert bool(tiny.counts.get(route)) == (stream in selected), route
    assert not tiny.counts.get("users.get")


def test_deselected_properties_are_left_out_and_the_rest_is_whole(tiny):
    catalog = _catalog_selecting(*STREAMS)
    dropped = {"posts": "content", "comments": "author"}
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == ["properties", dropped.get(entry["tap_stream_id"])]:
                metadata["metadata"]["selected"] = False
    result = run_tap(tiny.oauth_config(), catalog=catalog)
    assert result.returncode == 0, result.stderr[-2000:]
    for stream in STREAMS:
        records = result.records(stream)
        assert sorted(r["id"] for r in records) == sorted(
            r["id"] for r in tiny.dataset.truth(stream)
        )
        if stream in dropped:
            assert not any(dropped[stream] in r for r in records), stream
        else:
            assert any("kind" in r for r in records), stream
    assert any("title" in r for r in result.records("posts"))
    assert any("content" in r for r in result.records("comments"))
