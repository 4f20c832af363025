"""Auth, retries and errors: what is retried, what is fatal, and what the user is told."""

from __future__ import annotations

import re
import time
from collections import Counter
from urllib.parse import quote, quote_plus

import pytest
import requests

from tap_blogger.auth import build_authenticator
from tap_blogger.errors import AuthError
from tests.conftest import fast_retries, run_tap, tap_env


def assert_clean_failure(result, *fragments: str) -> None:
    assert result.returncode != 0
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]


@pytest.mark.parametrize("workers", [1, 8])
def test_token_expiring_mid_run_is_refreshed(fresh_tiny, workers):
    # Every request takes at least 150 ms, so the listings, which wait for the token and the
    # blog list, start at least 0.3 s after the token was asked for: past its lifetime.
    fresh_tiny.token_ttl_s = 0.3
    fresh_tiny.latency_ms = 150
    result = run_tap({**fresh_tiny.oauth_config(), "max_concurrency": workers})
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(result.ids("posts")) == sorted(p["id"] for p in fresh_tiny.dataset.truth("posts"))
    assert fresh_tiny.counts["token"] >= 2
    assert not [r for r in fresh_tiny.requests if r.status == 401]


def test_a_401_refreshes_once_and_retries(fresh_tiny):
    fresh_tiny.faults.add("401", route="pages.list", times=1)
    result = run_tap(fresh_tiny.oauth_config())
    assert result.returncode == 0, result.stderr[-2000:]
    assert fresh_tiny.counts["token"] == 2
    assert len(result.ids("pages")) == len(fresh_tiny.dataset.truth("pages"))


def first_blog(emu) -> str:
    return emu.dataset.truth("blogs")[0]["id"]


def attempts_per_path(emu, route: str) -> dict[str, int]:
    return dict(Counter(r.path for r in emu.requests if r.route == route))


def test_a_second_401_on_the_same_request_is_fatal(fresh_tiny):
    fresh_tiny.faults.add("401", route="pages.list", times=2, path_contains=first_blog(fresh_tiny))
    result = run_tap(fast_retries(fresh_tiny.oauth_config()))
    assert_clean_failure(result, "HTTP 401", "/v3/blogs/")
    assert fresh_tiny.counts["token"] == 2


@pytest.mark.parametrize(
    "kind", ["429", "500", "502", "503", "504", "403_rate", "403_user_rate", "drop", "truncate"]
)
def test_transient_failures_are_retried(fresh_tiny, kind):
    fresh_tiny.faults.add(kind, route="posts.list", times=2)
    result = run_tap(fast_retries(fresh_tiny.oauth_config()))
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(result.ids("posts")) == sorted(p["id"] for p in fresh_tiny.dataset.truth("posts"))


def test_three_attempts_then_a_clear_nonzero_exit(fresh_tiny):
    fresh_tiny.faults.always("503", route="pages.list")
    started = time.monotonic()
    result = run_tap(fresh_tiny.oauth_config())
    elapsed = time.monotonic() - started
    assert_clean_failure(
        result, "HTTP 503", "after 3 attempts", "GET /v3/blogs/", "/pages", "rerun"
    )
    (failed,) = re.findall(r"after 3 attempts for GET (/v3/blogs/\d+/pages)", result.stderr)
    attempts = attempts_per_path(fresh_tiny, "pages.list")
    assert attempts[failed] == 3
    # A concurrent listing still retrying when the run stopped had no more than 3 either.
    assert max(attempts.values()) == 3
    assert elapsed >= 3  # waited 1 s then 2 s (factor 2) between the attempts


def test_retry_after_is_honoured(fresh_tiny):
    fresh_tiny.faults.add("429", route="pages.list", times=1, retry_after=3)
    started = time.monotonic()
    result = run_tap(fast_retries(fresh_tiny.oauth_config()))
    assert result.returncode == 0, result.stderr[-2000:]
    assert time.monotonic() - started >= 3.0


def test_a_huge_retry_after_is_capped(fresh_tiny):
    fresh_tiny.faults.add("429", route="pages.list", times=1, retry_after=86400)
    started = time.monotonic()
    result = run_tap(fast_retries(fresh_tiny.oauth_config()))
    assert result.returncode == 0, result.stderr[-2000:]
    assert time.monotonic() - started < 40


@pytest.mark.parametrize("kind", ["400", "404", "403_daily"])
def test_other_client_errors_are_fatal_at_once(fresh_tiny, kind):
    fresh_tiny.faults.always(kind, route="posts.list")
    result = run_tap(fast_retries(fresh_tiny.oauth_config()))
    assert_clean_failure(result, f"HTTP {kind[:3]}", "/posts")
    assert set(attempts_per_path(fresh_tiny, "posts.list").values()) == {1}


def test_revoked_refresh_token_stops_before_any_data_call(fresh_tiny):
    fresh_tiny.revoke_refresh_token()
    result = run_tap(fresh_tiny.oauth_config())
    assert_clean_failure(result, "invalid_grant", "revoked or has expired", "tap-blogger-auth")
    assert sum(v for k, v in fresh_tiny.counts.items() if k != "token") == 0


def test_deleted_client_stops_before_any_data_call(fresh_tiny):
    fresh_tiny.delete_client()
    result = run_tap(fresh_tiny.oauth_config())
    assert_clean_failure(result, "invalid_client", "client_secret")
    assert fresh_tiny.counts["token"] == 1
    assert sum(v for k, v in fresh_tiny.counts.items() if k != "token") == 0


def test_a_refused_token_request_is_not_repeated_by_the_other_workers(fresh_tiny):
    # Workers start together and each needs the token; after one refusal the rest must stop
    # with it rather than ask Google again.
    fresh_tiny.delete_client()
    auth = build_authenticator(fresh_tiny.oauth_config(), timeout=5, user_agent="test")
    for _ in range(3):
        request = requests.Request("GET", fresh_tiny.api_url + "/users/self").prepare()
        with pytest.raises(AuthError, match="invalid_client"):
            auth.authenticate_request(request)
    assert fresh_tiny.counts["token"] == 1


def test_expired_access_token_is_a_clear_error(fresh_tiny):
    config = {k: v for k, v in fresh_tiny.oauth_config().items() if k in ("api_url", "token_url")}
    result = run_tap({**config, "access_token": "ya29.expired-token"})
    assert_clean_failure(result, "HTTP 401", "access_token")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"api_url": "http://blogger.example.com/v3"}, "api_url"),
        ({"token_url": "http://oauth.example.com/token"}, "token_url"),
        ({"start_date": "last tuesday"}, "start_date"),
        ({"refresh_token": None}, "refresh_token"),
        ({"client_id": ""}, "client_id"),
        ({"blog_idz": ["1"]}, "blog_idz"),
        ({"lookback_minutes": "sixty"}, "lookback_minutes"),
    ],
)
def test_bad_config_is_refused_before_any_request(tiny, change, named):
    config = {**tiny.oauth_config(), **change}
    config = {k: v for k, v in config.items() if v is not None}
    result = run_tap(config)
    assert result.returncode != 0
    assert named in result.stderr
    assert sum(tiny.counts.values()) == 0


def test_no_credentials_names_the_settings(tiny):
    result = run_tap({"api_url": tiny.api_url, "token_url": tiny.token_url})
    assert result.returncode != 0
    for setting in ("client_id", "client_secret", "refresh_token", "access_token", "api_key"):
        assert setting in result.stderr


def test_api_key_with_non_live_statuses_is_refused(tiny):
    config = {**tiny.api_key_config(), "post_statuses": ["live", "draft"]}
    result = run_tap(config)
    assert result.returncode != 0
    assert "post_statuses" in result.stderr and "api_key" in result.stderr
    assert sum(tiny.counts.values()) == 0


def test_unknown_blog_id_is_named(tiny):
    result = run_tap({**tiny.oauth_config(), "blog_ids": ["1234567890"]})
    assert_clean_failure(result, "1234567890", "blog_ids", "HTTP 404")


def test_discovery_needs_no_credentials():
    result = run_tap({}, args=["--discover"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "streams" in result.stdout


def test_secrets_never_appear_in_output(fresh_tiny):
    fresh_tiny.token_ttl_s = 0.5
    fresh_tiny.latency_ms = 40
    fresh_tiny.faults.add("401", route="posts.list", times=1)
    fresh_tiny.faults.add("drop", route="pages.list", times=1)
    config = {**fast_retries(fresh_tiny.oauth_config()), "max_concurrency": 1}
    debug = tap_env(TAP_BLOGGER_LOGLEVEL="DEBUG")
    runs = [run_tap(config, env=debug), run_tap(config, args=["--about", "--format=json"])]
    assert runs[0].returncode == 0, runs[0].stderr[-2000:]
    access_token = fresh_tiny.issued_access_tokens[-1]
    bearer = {
        k: v for k, v in config.items() if k not in ("client_id", "client_secret", "refresh_token")
    }
    runs.append(run_tap({**bearer, "access_token": access_token}, env=debug))
    fresh_tiny.faults.always("drop", route="posts.list")  # the failing URL carries the API key
    runs.append(run_tap(fast_retries(fresh_tiny.api_key_config()), env=debug))
    assert runs[-1].returncode != 0

    secrets = [fresh_tiny.client_secret, fresh_tiny.refresh_token, fresh_tiny.api_key]
    secrets += fresh_tiny.issued_access_tokens
    assert len(fresh_tiny.issued_access_tokens) >= 2
    assert "DEBUG" in runs[0].stderr
    for run in runs:
        text = run.stdout + run.stderr
        for secret in secrets:
            for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
                assert form not in text


def test_a_failing_run_still_delivers_every_record_it_produced(fresh_default):
    emu = fresh_default
    emu.faults.always("503", route="comments.listByBlog", path_contains="pageToken")
    result = run_tap({**fast_retries(emu.oauth_config()), "max_concurrency": 1})
    assert_clean_failure(result, "HTTP 503", "/comments")
    # The first 500-comment page arrived before the second one failed: all of it is emitted.
    assert len(set(result.ids("comments"))) == 500
