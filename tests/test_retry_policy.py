"""The retry policy decided from Google's error bodies and headers, one response at a time."""

from __future__ import annotations

import json

import pytest
import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_blogger.client import RateLimited
from tap_blogger.errors import BloggerAPIError
from tap_blogger.tap import TapBlogger

CONFIG = {"api_key": "key-for-unit-tests", "blog_ids": ["1"], "api_url": "http://127.0.0.1:9/v3"}


@pytest.fixture(scope="module")
def stream():
    return TapBlogger(config=CONFIG, validate_config=True).streams["posts"]


def _response(status: int, error: dict, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps({"error": error}).encode()
    response.headers.update({"Content-Type": "application/json", **(headers or {})})
    response.request = requests.Request("GET", "http://127.0.0.1:9/v3/blogs/1/posts").prepare()
    return response


LEGACY_RATE = {
    "code": 403,
    "errors": [{"reason": "rateLimitExceeded"}],
    "status": "PERMISSION_DENIED",
}
ERROR_INFO_RATE = {
    "code": 403,
    "status": "PERMISSION_DENIED",
    "message": "Quota exceeded for quota metric 'Queries' of service 'blogger.googleapis.com'.",
    "details": [
        {"@type": "type.googleapis.com/google.rpc.Help", "links": []},
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED"},
    ],
}
DAILY = {"code": 403, "errors": [{"reason": "dailyLimitExceeded"}], "status": "PERMISSION_DENIED"}
FORBIDDEN = {"code": 403, "errors": [{"reason": "forbidden"}], "status": "PERMISSION_DENIED"}


@pytest.mark.parametrize("error", [LEGACY_RATE, ERROR_INFO_RATE], ids=["errors", "details"])
def test_403_rate_limits_are_retried_in_both_of_googles_formats(stream, error):
    with pytest.raises(RateLimited):  # retried, and every worker slows down
        stream.validate_response(_response(403, error))


@pytest.mark.parametrize("error", [DAILY, FORBIDDEN], ids=["daily", "forbidden"])
def test_other_403s_are_fatal_and_say_why(stream, error):
    with pytest.raises(BloggerAPIError) as caught:
        stream.validate_response(_response(403, error))
    assert caught.value.status == 403
    assert error["errors"][0]["reason"] in str(caught.value)
    assert "GET /v3/blogs/1/posts" in str(caught.value)


def test_waits_double_from_the_initial_delay_with_little_jitter(stream):
    waits = stream.backoff_wait_generator()
    next(waits)
    failure = RetriableAPIError("HTTP 503", _response(503, {"code": 503}))
    first, second = waits.send(failure), waits.send(failure)
    assert (first, second) == (1.0, 2.0)
    jittered = [stream.backoff_jitter(first) for _ in range(500)]
    # At most 10% on top, so the second wait stays close to twice the first (factor 2).
    assert all(first <= wait <= first * 1.1 for wait in jittered)
    assert len(set(jittered)) > 1


def test_retry_after_wins_and_is_capped(stream):
    waits = stream.backoff_wait_generator()
    next(waits)
    polite = RetriableAPIError("429", _response(429, {"code": 429}, {"Retry-After": "7"}))
    greedy = RetriableAPIError("429", _response(429, {"code": 429}, {"Retry-After": "86400"}))
    assert waits.send(polite) == 7.0
    assert waits.send(greedy) == 20.0
