"""Concurrent workers share one request budget, slow down together when Google says so, and
spend no round trip waiting that they could have overlapped."""

from __future__ import annotations

import threading
import time

import pytest

from tap_blogger.concurrency import ListingPrefetcher, RateLimiter
from tests.blogger_emulator import API_ROUTES, RATE_LIMITERS, BloggerEmulator, Dataset
from tests.conftest import run_tap


def _accepted(limiter: RateLimiter, count: int) -> None:
    for _ in range(count):
        with limiter.request():
            limiter.succeeded()


def test_a_refusal_holds_everyone_then_halves_the_rate_once_per_hold():
    limiter = RateLimiter(20)
    _accepted(limiter, 20)
    limiter.rate_limited(0.3)
    limiter.rate_limited(0.3)  # another worker's refusal from the same burst
    assert limiter.rate == 10
    started = time.monotonic()
    limiter.acquire()
    assert time.monotonic() - started >= 0.3


def test_a_refusal_far_below_the_ceiling_halves_what_the_server_accepted():
    # Halving a ceiling of 100 towards a server that takes 6 a second would need more
    # refusals than one request's three attempts allow.
    limiter = RateLimiter(100)
    _accepted(limiter, 6)
    limiter.rate_limited(0)
    assert limiter.rate == 3


def test_successes_win_the_rate_back_but_never_past_the_ceiling():
    limiter = RateLimiter(20)
    _accepted(limiter, 20)
    limiter.rate_limited(0)
    for _ in range(100):
        limiter.succeeded()
    assert limiter.rate == 20


def test_without_a_ceiling_the_refused_rate_becomes_one():
    # Twelve requests went within the last second; the server accepted eight of them.
    limiter = RateLimiter(0)
    for sent in range(12):
        with limiter.request():
            if sent < 8:
                limiter.succeeded()
    limiter.rate_limited(0)
    assert limiter.rate == 4  # half of what the server accepted
    for _ in range(100):
        limiter.succeeded()
    assert limiter.rate == 12  # won back up to what was sent when refused, not beyond


@pytest.mark.parametrize(
    "settings", [{}, {"requests_per_second": 0}], ids=["default", "no-ceiling"]
)
def test_a_server_rate_limit_below_the_ceiling_slows_the_run_instead_of_failing_it(settings):
    # 20 blogs, 8 concurrent workers, a server that allows 5 requests/s: retries alone (3
    # attempts per request) would run out in the storm of 429s.
    with BloggerEmulator(Dataset.named("agency"), rate_limit_rps=5) as emu:
        result = run_tap({**emu.oauth_config(), **settings})
        refused = emu.rate_limited
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(result.ids("comments")) == sorted(c["id"] for c in emu.dataset.truth("comments"))
    assert 0 < refused <= 25


@pytest.mark.parametrize("window", sorted(RATE_LIMITERS))
def test_a_server_allowing_the_configured_rate_never_refuses_a_request(window):
    # However the server counts its requests per second. 20 blogs need 74 requests: more
    # than a second's worth at this rate.
    rate = 30
    with BloggerEmulator(
        Dataset.named("agency"), rate_limit_rps=rate, rate_limit_window=window, latency_ms=20
    ) as emu:
        result = run_tap({**emu.oauth_config(), "requests_per_second": rate})
        refused, requests = emu.rate_limited, sum(emu.counts.values())
    assert result.returncode == 0, result.stderr[-2000:]
    assert requests > 2 * rate
    assert refused == 0


def test_no_second_long_window_holds_more_requests_than_the_rate():
    # Requests of 0 to 0.2 s from 4 threads: a token comes back a second after its response.
    limiter = RateLimiter(10)
    sent: list[float] = []

    def worker(durations: list[float]) -> None:
        for duration in durations:
            with limiter.request():
                sent.append(time.monotonic())
                time.sleep(duration)

    threads = [threading.Thread(target=worker, args=([0.2 * (i % 2)] * 7,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent.sort()
    assert len(sent) == 28
    assert sent[9] - sent[0] < 0.5, "the first second's requests did not go at once"
    for i, at in enumerate(sent):
        assert sum(1 for later in sent[i:] if later < at + 1) <= 10, (i, sent)


def test_users_self_is_read_with_the_blog_list_not_after_every_listing():
    # The SDK syncs `users` last (streams run in name order); its one request must not add a
    # round trip to the end of the run.
    with BloggerEmulator(Dataset.named("agency"), latency_ms=20) as emu:
        result = run_tap(emu.oauth_config())
        routes = [r.route for r in emu.requests if r.route in API_ROUTES]
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.ids("users"), "the users stream emitted nothing"
    assert len(routes) > 60
    assert routes.index("users.get") < 5, routes[:10]


def test_a_listing_nobody_reads_never_keeps_its_worker_or_the_process_alive():
    # Two pages fill the listing's queue; its failure (or its end) must still not block the
    # worker once the run is over, or a failed run would hang at exit instead of exiting.
    prefetcher = ListingPrefetcher(1)
    offered_everything = threading.Event()

    def pages():
        yield {"items": [1]}
        yield {"items": [2]}
        offered_everything.set()
        raise RuntimeError("page 3 failed")

    prefetcher.plan(("blogs/1/comments", ""), pages)
    assert offered_everything.wait(5)
    prefetcher.close()
    worker = next(t for t in threading.enumerate() if t.name == "blogger-0")
    worker.join(timeout=3)
    assert not worker.is_alive(), "a prefetching worker is still blocked"
