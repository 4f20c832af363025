"""Incremental runs: the second run costs a few requests, emits what changed, misses nothing."""

from __future__ import annotations

import copy
import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import StateMessage

from tap_blogger.output import BatchingWriter
from tap_blogger.records import format_utc, parse_timestamp
from tests.blogger_emulator import BloggerEmulator
from tests.conftest import run_tap, run_tap_until_killed

LOOKBACK = dt.timedelta(minutes=60)


def _biggest_blog(emu: BloggerEmulator) -> str:
    blogs = emu.dataset.truth("blogs")
    return max(blogs, key=lambda b: b["posts"]["totalItems"])["id"]


def _bookmarks(state: dict, stream: str) -> dict[str, dt.datetime]:
    return {
        p["context"]["blog_id"]: parse_timestamp(p["replication_key_value"])
        for p in state["bookmarks"][stream]["partitions"]
        if "replication_key_value" in p
    }


def test_second_run_emits_changes_and_new_comments_on_old_posts(fresh_default):
    emu = fresh_default
    first = run_tap(emu.oauth_config())
    assert first.returncode == 0, first.stderr[-2000:]
    first_counts = Counter(emu.counts)

    blog_id = _biggest_blog(emu)
    oldest = sorted(emu.dataset.truth("posts", blog_ids=[blog_id]), key=lambda p: p["updated"])
    oldest.sort(key=lambda p: parse_timestamp(p["updated"]))
    updated = [
        emu.dataset.update_post(blog_id, p["id"], title=f"Edited {p['id']}") for p in oldest[:5]
    ]
    added = [emu.dataset.add_post(blog_id) for _ in range(4)]
    commented = [p for p in oldest[5:40] if p["replies"]["totalItems"] != "0"][:3] + oldest[40:43]
    comments = [emu.dataset.add_comment(blog_id, p["id"]) for p in commented]
    drafts = emu.dataset.truth("posts", blog_ids=[blog_id], post_statuses=("DRAFT",))
    published = emu.dataset.publish_post(blog_id, drafts[0]["id"])
    emu.reset_counts()

    second = run_tap(emu.oauth_config(), state=first.last_state)
    assert second.returncode == 0, second.stderr[-2000:]

    changed = {p["id"] for p in updated + added} | {published["id"]}
    emitted = {p["id"]: p for p in second.records("posts")}
    assert changed <= set(emitted)
    assert emitted[published["id"]]["status"] == "LIVE"
    assert emitted[updated[0]["id"]]["title"] == f"Edited {updated[0]['id']}"
    bounds = {b: v - LOOKBACK for b, v in _bookmarks(first.last_state, "posts").items()}
    for post_id, post in emitted.items():
        if post_id not in changed:  # an unchanged post is re-read only inside the lookback
            assert parse_timestamp(post["updated"]) >= bounds[post["blog_id"]]
    # every comment added to an old, unchanged post arrives
    assert {c["id"] for c in comments} <= set(second.ids("comments"))
    assert (
        not set(second.ids("comments"))
        - {c["id"] for c in comments}
        - {
            c["id"]
            for c in first.records("comments")
            if parse_timestamp(c["published"])
            >= _bookmarks(first.last_state, "comments")[c["blog_id"]] - LOOKBACK
        }
    )

    blogs = len(emu.dataset.truth("blogs"))
    # One page per blog: the rest is older than the bookmark.
    assert emu.counts["posts.list"] == blogs
    assert emu.counts["comments.listByBlog"] == blogs
    assert sum(emu.counts.values()) <= 3 + 3 * blogs
    incremental = ("posts.list", "comments.listByBlog")
    assert sum(emu.counts[r] for r in incremental) * 2 <= sum(first_counts[r] for r in incremental)


def test_a_third_run_without_changes_is_cheap_and_keeps_bookmarks(fresh_default):
    emu = fresh_default
    first = run_tap(emu.oauth_config())
    second = run_tap(emu.oauth_config(), state=first.last_state)
    assert second.returncode == 0
    for stream in ("posts", "comments"):
        before, after = _bookmarks(first.last_state, stream), _bookmarks(second.last_state, stream)
        assert before.keys() == after.keys()
        assert all(after[b] >= before[b] for b in before)


def _rewrite_bookmarks(state: dict, zone: str | None) -> dict:
    state = copy.deepcopy(state)
    for stream in ("posts", "comments"):
        for partition in state["bookmarks"][stream]["partitions"]:
            value = parse_timestamp(partition["replication_key_value"])
            partition["replication_key_value"] = (
                value.astimezone(ZoneInfo(zone)).isoformat()
                if zone
                else value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            )
    return state


def test_bookmarks_in_any_offset_compare_as_instants(fresh_tiny):
    emu = fresh_tiny
    first = run_tap(emu.oauth_config())
    blog_id = emu.dataset.truth("blogs")[0]["id"]
    emu.dataset.add_comment(blog_id, emu.dataset.truth("posts", blog_ids=[blog_id])[-1]["id"])
    emu.dataset.update_post(blog_id, emu.dataset.truth("posts", blog_ids=[blog_id])[-1]["id"])
    results = {
        zone: run_tap(emu.oauth_config(), state=_rewrite_bookmarks(first.last_state, zone))
        for zone in (None, "America/Los_Angeles", "Asia/Kolkata")
    }
    emitted = {
        zone: (sorted(r.ids("posts")), sorted(r.ids("comments"))) for zone, r in results.items()
    }
    assert emitted[None] == emitted["America/Los_Angeles"] == emitted["Asia/Kolkata"]
    assert emitted[None][0] and emitted[None][1]


def test_start_date_parameters_are_plain_utc_seconds_at_or_before_the_bound(fresh_tiny):
    emu = fresh_tiny
    first = run_tap({**emu.oauth_config(), "start_date": "2020-01-01T00:00:00.750-08:00"})
    assert first.returncode == 0, first.stderr[-2000:]
    emu.requests.clear()
    second = run_tap(emu.oauth_config(), state=first.last_state)
    assert second.returncode == 0, second.stderr[-2000:]
    bookmarks = _bookmarks(first.last_state, "comments")
    sent = [r for r in emu.requests if r.route == "comments.listByBlog"]
    assert sent
    for request in sent:
        (value,) = request.query["startDate"]
        moment = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
        blog_id = request.path.split("/blogs/")[1].split("/")[0]
        bound = bookmarks[blog_id] - LOOKBACK
        assert bound - dt.timedelta(seconds=1) < moment <= bound


def test_dst_offsets_compare_as_instants():
    # 01:30 PDT on the night clocks go back is earlier than 01:10 PST, though it sorts later.
    pdt, pst = "2024-11-03T01:30:00-07:00", "2024-11-03T01:10:00-08:00"
    assert parse_timestamp(pdt) < parse_timestamp(pst)
    assert format_utc(parse_timestamp(pdt)) < format_utc(parse_timestamp(pst))


def test_killed_run_resumes_from_its_last_state_without_loss(fresh_default):
    emu = fresh_default
    emu.latency_ms = 15
    killed = run_tap_until_killed(emu.oauth_config(), after_records=1500)
    assert killed.last_state is not None
    emu.latency_ms = 0
    rerun = run_tap(emu.oauth_config(), state=killed.last_state)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    for stream in ("blogs", "posts", "pages", "comments"):
        union = set(killed.ids(stream)) | set(rerun.ids(stream))
        assert union == {r["id"] for r in emu.dataset.truth(stream)}, stream


class TestSelection:
    def test_start_date(self, tiny):
        posts = tiny.dataset.truth("posts")
        middle = sorted(parse_timestamp(p["published"]) for p in posts)[len(posts) // 2]
        result = run_tap({**tiny.oauth_config(), "start_date": format_utc(middle)})
        assert result.returncode == 0, result.stderr[-2000:]
        for stream in ("posts", "comments", "pages"):
            expected = {
                r["id"]
                for r in tiny.dataset.truth(stream)
                if parse_timestamp(r["published"]) >= middle
            }
            assert set(result.ids(stream)) == expected, stream

    def test_blog_ids_and_blog_urls_are_merged(self, tiny):
        blog_a, blog_b = tiny.dataset.truth("blogs")[:2]
        config = {
            **tiny.oauth_config(),
            "blog_ids": [blog_a["id"]],
            "blog_urls": [blog_b["url"], blog_a["url"]],
        }
        result = run_tap(config)
        assert result.returncode == 0, result.stderr[-2000:]
        assert sorted(result.ids("blogs")) == sorted([blog_a["id"], blog_b["id"]])
        assert tiny.counts["blogs.get"] == 1 and tiny.counts["blogs.getByUrl"] == 2
        assert not tiny.counts["blogs.listByUser"]

    def test_only_the_configured_blog(self, tiny):
        blog = tiny.dataset.truth("blogs")[0]
        result = run_tap({**tiny.oauth_config(), "blog_ids": [blog["id"]]})
        assert set(result.ids("posts")) == {
            p["id"] for p in tiny.dataset.truth("posts", blog_ids=[blog["id"]])
        }

    @pytest.mark.parametrize(
        ("setting", "stream", "statuses"),
        [
            ("post_statuses", "posts", ["live", "draft", "scheduled", "soft_trashed"]),
            ("page_statuses", "pages", ["draft"]),
            ("comment_statuses", "comments", ["live", "pending", "spam"]),
        ],
    )
    def test_statuses(self, tiny, setting, stream, statuses):
        result = run_tap({**tiny.oauth_config(), setting: statuses})
        assert result.returncode == 0, result.stderr[-2000:]
        truth = tiny.dataset.truth(stream, **{setting: tuple(s.upper() for s in statuses)})
        assert sorted(result.ids(stream)) == sorted(r["id"] for r in truth)
        assert {r["status"] for r in result.records(stream)} == {s.upper() for s in statuses}

    def test_fetch_bodies_false_drops_content(self, tiny):
        result = run_tap({**tiny.oauth_config(), "fetch_bodies": False})
        assert result.returncode == 0
        assert result.records("posts") and not any("content" in p for p in result.records("posts"))
        assert all(
            r.query.get("fetchBodies") == ["false"]
            for r in tiny.requests
            if r.route == "posts.list"
        )

    def test_labels_filter_posts(self, tiny):
        labelled = [p for p in tiny.dataset.truth("posts") if p.get("labels")]
        label = labelled[0]["labels"][0]
        result = run_tap({**tiny.oauth_config(), "labels": [label]})
        expected = {
            p["id"] for p in tiny.dataset.truth("posts") if label in (p.get("labels") or [])
        }
        assert set(result.ids("posts")) == expected


def test_api_key_mode_reads_comments_per_post_only_where_there_are_replies(tiny):
    result = run_tap(tiny.api_key_config())
    assert result.returncode == 0, result.stderr[-2000:]
    public = tiny.api_key_config()["blog_ids"]
    posts = tiny.dataset.truth("posts", blog_ids=public)
    with_replies = {p["id"] for p in posts if p["replies"]["totalItems"] != "0"}
    asked = [
        r.path.split("/posts/")[1].split("/")[0]
        for r in tiny.requests
        if r.route == "comments.list"
    ]
    assert set(asked) == with_replies and len(asked) == len(with_replies)
    live_on_live_posts = {
        c["id"]
        for c in tiny.dataset.truth("comments", blog_ids=public)
        if c["post"]["id"] in {p["id"] for p in posts}
    }
    assert set(result.ids("comments")) == live_on_live_posts
    assert result.records("users") == []


@pytest.mark.parametrize(
    "value",
    ["2024-01-01T10+01:00", "20240101T100000Z", "2024-01-01T10:00+01:00", "2024-W01-1T10:00:00Z"],
)
def test_iso_forms_that_rfc3339_does_not_allow_are_refused(value):
    with pytest.raises(ValueError):
        parse_timestamp(value)


@pytest.mark.parametrize(
    ("value", "utc"),
    [
        ("2024-03-10T01:59:00.123-08:00", "2024-03-10T09:59:00.123000+00:00"),
        ("2024-03-10T09:59:00Z", "2024-03-10T09:59:00.000000+00:00"),
        ("2024-03-10 10:59:00+0100", "2024-03-10T09:59:00.000000+00:00"),
    ],
)
def test_rfc3339_forms_are_read_as_instants(value, utc):
    assert format_utc(parse_timestamp(value)) == utc


def test_state_messages_are_encoded_as_the_sdks_own_writer_encodes_them():
    state = {
        "bookmarks": {
            "posts": {
                "partitions": [
                    {
                        "context": {"blog_id": "1"},
                        "replication_key": "updated",
                        "replication_key_value": "2024-01-01T00:00:00.000000+00:00",
                        "starting_replication_value": None,
                    }
                ]
            },
            "pages": {"note": "ü \u2028", "count": 3},
        }
    }
    message = StateMessage(value=state)
    assert bytes(BatchingWriter().serialize_message(message)) == bytes(
        MsgSpecWriter().serialize_message(message)
    )
