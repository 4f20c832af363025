"""Under fire: fault storms, slow answers, bad data and kills lose nothing and leak nothing."""

from __future__ import annotations

import datetime as dt
import json
import random
import types

import jsonschema
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tap_blogger.client import PageTokenPaginator
from tap_blogger.errors import BadRecordError, PaginationError
from tap_blogger.records import RecordShaper
from tap_blogger.schemas import stream_schema
from tests.conftest import fast_retries, run_tap, run_tap_until_killed

STREAMS = ("users", "blogs", "posts", "pages", "comments")


def assert_truth_once(result, emu) -> None:
    for stream in STREAMS:
        ids = result.ids(stream)
        assert len(ids) == len(set(ids)), f"{stream}: duplicates"
        assert set(ids) == {r["id"] for r in emu.dataset.truth(stream)}, stream


@pytest.mark.parametrize("workers", [1, 8])
def test_fault_storm_still_yields_exactly_the_truth(default_emulator, workers):
    emu = default_emulator
    emu.reset_counts()
    emu.faults.storm(rate=0.25, max_consecutive=2, seed=workers)
    try:
        result = run_tap({**fast_retries(emu.oauth_config()), "max_concurrency": workers})
    finally:
        emu.faults.clear()
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(emu.faults.injected) >= 5  # the storm really blew
    assert_truth_once(result, emu)


def test_a_slow_answer_times_out_and_is_retried(fresh_tiny):
    fresh_tiny.faults.add("slow", route="pages.list", times=1, delay_s=3)
    result = run_tap({**fast_retries(fresh_tiny.oauth_config()), "request_timeout": 1})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "timed out" in result.stderr.lower() or "Timeout" in result.stderr
    assert_truth_once(result, fresh_tiny)


def test_always_slow_ends_with_a_message_naming_the_timeout(fresh_tiny):
    fresh_tiny.faults.always("slow", route="pages.list", delay_s=2)
    result = run_tap({**fast_retries(fresh_tiny.oauth_config()), "request_timeout": 0.5})
    assert result.returncode != 0
    assert "request_timeout" in result.stderr and "3 times" in result.stderr
    assert "Traceback" not in result.stderr


def test_html_and_truncated_bodies_with_status_200_are_retried_then_fatal(fresh_tiny):
    fresh_tiny.faults.always("html200", route="posts.list")
    result = run_tap(fast_retries(fresh_tiny.oauth_config()))
    assert result.returncode != 0
    assert "invalid JSON" in result.stderr and "/posts" in result.stderr


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_at_a_random_point_then_resume_loses_nothing(default_emulator, seed):
    emu = default_emulator
    emu.latency_ms = 5
    try:
        total = sum(len(emu.dataset.truth(s)) for s in STREAMS)
        killed = run_tap_until_killed(
            emu.oauth_config(), after_records=random.Random(seed).randrange(1, total)
        )
    finally:
        emu.latency_ms = 0
    rerun = run_tap(emu.oauth_config(), state=killed.last_state)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    for stream in STREAMS:
        union = set(killed.ids(stream)) | set(rerun.ids(stream))
        assert union == {r["id"] for r in emu.dataset.truth(stream)}, stream


def test_large_and_unusual_content_arrives_intact(fresh_tiny):
    blog_id = fresh_tiny.dataset.truth("blogs")[0]["id"]
    post_id = fresh_tiny.dataset.truth("posts", blog_ids=[blog_id])[0]["id"]
    content = "<script>alert('x')</script> emoji \U0001f600 line\u2028sep " + "x" * 1_000_000
    fresh_tiny.dataset.update_post(blog_id, post_id, content=content)
    result = run_tap(fresh_tiny.oauth_config())
    assert result.returncode == 0, result.stderr[-2000:]
    emitted = {p["id"]: p for p in result.records("posts")}
    assert emitted[post_id]["content"] == content


def test_repeated_page_token_is_an_error_not_a_loop():
    stream = types.SimpleNamespace(stop_paging=lambda body, context: False)
    paginator = PageTokenPaginator(stream)  # type: ignore[arg-type]

    def page(token: str) -> types.SimpleNamespace:
        request = types.SimpleNamespace(method="GET", url="http://127.0.0.1/v3/blogs/1/posts")
        return types.SimpleNamespace(blogger_body={"nextPageToken": token}, request=request)

    paginator.advance(page("A"))
    paginator.advance(page("B"))
    with pytest.raises(PaginationError, match="repeated a page token on GET /v3/blogs/1/posts"):
        paginator.advance(page("A"))


def test_a_page_token_announced_twice_stops_the_run(default_emulator):
    default_emulator.faults.always("repeat_token", route="posts.list", path_contains="pageToken=")
    try:
        result = run_tap(default_emulator.oauth_config())
    finally:
        default_emulator.faults.clear()
    assert result.returncode != 0
    assert "repeated a page token" in result.stderr and "/posts" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_page_token_the_api_rejects_stops_the_run(default_emulator):
    default_emulator.faults.always("400", route="comments.listByBlog", path_contains="pageToken=")
    try:
        result = run_tap(default_emulator.oauth_config())
    finally:
        default_emulator.faults.clear()
    assert result.returncode != 0
    assert "HTTP 400" in result.stderr and "/comments" in result.stderr
    assert "Traceback" not in result.stderr


def test_connection_check_is_cheap_and_clear(tiny):
    result = run_tap(tiny.oauth_config(), args=["--test"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Connection test passed" in result.stderr
    assert sum(tiny.counts.values()) <= 3
    assert not result.records("posts")


def test_connection_check_reports_bad_credentials(fresh_tiny):
    fresh_tiny.revoke_refresh_token()
    result = run_tap(fresh_tiny.oauth_config(), args=["--test"])
    assert result.returncode != 0
    assert "invalid_grant" in result.stderr and "Traceback" not in result.stderr


# Property-based: whatever shape a Blogger-like item has, it is emitted valid or refused clearly.

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_timestamps = st.one_of(
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.sampled_from(
        [
            "2024-03-10T02:30:00-08:00",
            "2024-11-03T01:30:00.123-07:00",
            "0001-01-01T00:30:00+01:00",  # before any UTC datetime
            "9999-12-31T23:30:00-01:00",  # after any
            "2024-01-01T10:00:00.9999997Z",  # finer than microseconds
            "1890-01-01T00:00:00-07:52:58",  # an offset with seconds
            "2024-01-01t10:00:00,5z",
            "2024-03-10 10:59:00+0100",
            "2024-03-10T10:59:60Z",
            "not a date",
            "",
        ]
    ),
    _text,
)
_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), _text)
_author = st.fixed_dictionaries(
    {},
    optional={
        "id": _text,
        "displayName": _text,
        "image": st.fixed_dictionaries({}, optional={"url": _text}),
    },
)
_post = st.fixed_dictionaries(
    {"id": st.one_of(st.text(min_size=1, max_size=20), st.none())},
    optional={
        "kind": st.just("blogger#post"),
        "title": st.one_of(_text, _scalars),
        "content": _text,
        "published": _timestamps,
        "updated": _timestamps,
        "author": st.one_of(_author, _scalars),
        "replies": st.fixed_dictionaries(
            {},
            optional={
                "totalItems": st.one_of(st.integers(0, 10**12).map(str), _scalars),
                "items": st.lists(
                    st.fixed_dictionaries({"id": _text}, optional={"published": _timestamps}),
                    max_size=2,
                ),
            },
        ),
        "labels": st.one_of(st.lists(_text, max_size=3), _scalars),
        "location": st.fixed_dictionaries(
            {}, optional={"lat": _scalars, "name": _text, "undocumented": _scalars}
        ),
        "unexpectedField": _scalars,
    },
)
_well_formed_post = st.fixed_dictionaries(
    {
        "id": st.text(min_size=1, max_size=20),
        "published": st.one_of(
            # RFC 3339 offsets are whole minutes; zones' local mean time before 1900 is not.
            st.datetimes(timezones=st.timezones())
            .filter(lambda d: d.utcoffset() % dt.timedelta(minutes=1) == dt.timedelta(0))
            .map(lambda d: d.isoformat()),
            st.sampled_from(
                ["2024-01-01T10:00:00.9999997Z", "2024-01-01t10:00:00z", "2024-03-10 10:59:00+0100"]
            ),
        ),
    },
    optional={
        "title": _text,
        "author": _author,
        "replies": st.fixed_dictionaries({"totalItems": st.integers(0, 10**12).map(str)}),
        "labels": st.lists(_text, max_size=3),
        "location": st.fixed_dictionaries({}, optional={"lat": st.floats(-90, 90)}),
    },
)

_POST_SCHEMA = stream_schema("Post", ("blog_id",))
_VALIDATOR = jsonschema.Draft7Validator(
    _POST_SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
)


def _quiet_shaper() -> RecordShaper:
    return RecordShaper(
        "posts", _POST_SCHEMA, logger=types.SimpleNamespace(warning=lambda *a: None)
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_post)
def test_any_blogger_shaped_item_is_emitted_valid_or_refused_clearly(item):
    try:
        record = _quiet_shaper().shape(dict(item))
    except BadRecordError as exc:
        assert "posts" in str(exc)
        return
    _VALIDATOR.validate(record)
    assert "unexpectedField" not in record


def _walked(shaper: RecordShaper, items: list) -> list[dict] | BadRecordError:
    """What the general walk makes of a page's items, record by record."""
    try:
        return [shaper.shape(dict(item)) for item in items]
    except BadRecordError as exc:
        return exc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_post, _well_formed_post), max_size=4), st.one_of(st.none(), _text))
def test_a_page_reads_as_the_general_walk_reads_its_items(items, token):
    body = {"kind": "blogger#postList", "items": items}
    if token is not None:
        body["nextPageToken"] = token
    try:
        content = json.dumps(body, allow_nan=False).encode()
    except ValueError:  # an infinity: JSON has none, so no API body holds one
        assume(False)
    expected = _walked(_quiet_shaper(), json.loads(content)["items"])
    if isinstance(expected, BadRecordError):
        with pytest.raises(BadRecordError):
            shaper = _quiet_shaper()
            shaper.records(shaper.read_page(content))
        return
    shaper = _quiet_shaper()
    page = shaper.read_page(content)
    assert page.get("nextPageToken") == token
    assert shaper.records(page) == expected


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_well_formed_post, min_size=1, max_size=4))
def test_a_well_formed_page_is_decoded_typed_not_walked(items):
    # The typed decoding builds records in the schema's field order, the walk keeps the wire
    # order: reversed wire order tells the two apart.
    wire = [dict(reversed(list(item.items()))) for item in items]
    shaper = _quiet_shaper()
    records = shaper.records(shaper.read_page(json.dumps({"items": wire}).encode()))
    declared = list(_POST_SCHEMA["properties"])
    for record in records:
        assert list(record) == sorted(record, key=declared.index)
