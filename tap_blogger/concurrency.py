"""Overlapping the round trips of independent listings, within Google's rate limits.

Cursor pagination makes the pages of one listing sequential, but the listings of different
blogs and streams are independent. `ListingPrefetcher` reads the listings the sync will ask for
next in a bounded pool of worker threads, a few pages ahead, while the SDK keeps emitting records
in exactly the order (and with exactly the state) of a sequential run: a stream still consumes
its pages itself, in order; they have just already arrived.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import typing as t
from collections import deque

ListingKey = tuple[str, str]  # (path, encoded query) of the first page
PAGES_AHEAD = 2  # per listing: bounds memory to a few pages whatever the blog size
_DONE = object()


class RateLimiter:
    """At most `rate` requests in any one-second window over every thread (`rate` 0: no
    ceiling), slowing everyone down together when the API says "too many".

    A bucket of `rate` tokens: a request takes one, which comes back a second after its
    response. The server saw the request before that response, so however late a request
    leaves or arrives, no second-long window at the server holds more than `rate` of them,
    whichever way it counts: a token bucket as deep as its rate, per calendar second, or over
    any sliding second. Up to `rate` requests may still go at once, which a short run or a
    burst of small listings uses.

    A rate-limit answer (429, or 403 rateLimitExceeded) holds every thread for the wait the
    retry uses and halves the rate, once for all the refusals that arrive during that hold:
    from the ceiling, or from the requests the server accepted in the last second if those were
    fewer (what it allows, not what we asked for: with a ceiling far above the server's limit,
    halving from the ceiling would take more refusals than one request's three attempts).
    Until the rate is won back (a little with each success, never past the ceiling or, without
    one, the rate that was refused) requests are evenly spaced instead of in bursts, so the
    retries do not meet a full server count again.
    """

    RECOVERY = 1.05  # per successful response: from half to the full rate in 15 responses
    MIN_RATE = 1.0
    WINDOW = 1.0  # seconds after its response that a request's token comes back

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._limit = rate  # the rate never to go beyond again
        self._resume_at = 0.0  # the end of a hold
        self._next_at = 0.0  # the earliest next request while the rate is being won back
        self._in_flight = 0
        self._returns: deque[float] = deque()  # when finished requests' tokens come back
        self._recent: deque[float] = deque(maxlen=256)  # request times: the rate refused
        self._accepted: deque[float] = deque(maxlen=256)  # times of successful responses
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def request(self) -> t.Iterator[None]:
        """Wait for a token, hold it during the request, and send it back a window later."""
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def acquire(self) -> None:
        with self._changed:
            while (wait := self._wait(time.monotonic())) != 0:
                self._changed.wait(wait)
            now = time.monotonic()
            self._in_flight += 1
            self._recent.append(now)
            if 0 < self.rate < self._limit:
                self._next_at = now + 1 / self.rate

    def release(self) -> None:
        with self._changed:
            self._in_flight -= 1
            self._returns.append(time.monotonic() + self.WINDOW)
            self._changed.notify_all()

    def _wait(self, now: float) -> float | None:
        """Seconds until a request may go: 0 now, None once a request in flight is back."""
        hold = max(self._resume_at, self._next_at) - now
        if hold > 0:
            return hold
        returns = self._returns
        while returns and returns[0] <= now:
            returns.popleft()
        tokens = max(int(self.rate), 1)
        out = self._in_flight + len(returns)
        if self.rate <= 0 or out < tokens:
            return 0
        # After a halving, more tokens may be out than the bucket now holds: wait for enough.
        back = out - tokens  # tokens to come back, then one more is free
        return returns[back] - now if back < len(returns) else None

    def rate_limited(self, wait: float) -> None:
        """The API refused a request for its rate: hold everyone for `wait`, then go slower."""
        with self._changed:
            now = time.monotonic()
            holding = now < self._resume_at  # refusals of one burst slow down once, not each
            self._resume_at = max(self._resume_at, now + wait)
            if holding:
                return
            if self.rate <= 0:
                self.rate = self._limit = float(max(_within_a_second(self._recent, now), 2))
            accepted = _within_a_second(self._accepted, now)
            self.rate = max(self.MIN_RATE, min(self.rate, accepted) / 2)
            self._next_at = self._resume_at + 1 / self.rate

    def succeeded(self) -> None:
        with self._changed:
            self._accepted.append(time.monotonic())
            if 0 < self.rate < self._limit:
                self.rate = min(self._limit, self.rate * self.RECOVERY)


def _within_a_second(times: deque[float], now: float) -> int:
    return sum(1 for at in times if at > now - 1)


class _Listing:
    """The pages of one listing, fetched by a worker into a small queue."""

    def __init__(self, pages: t.Callable[[], t.Iterator[dict]]) -> None:
        self._pages = pages
        self._queue: queue.Queue = queue.Queue(maxsize=PAGES_AHEAD)
        self._cancelled = threading.Event()

    def fetch(self) -> None:
        if self._cancelled.is_set():  # cancelled before a worker got to it
            return
        try:
            for body in self._pages():
                if not self._offer(body):
                    return
            self._offer((_DONE, None))
        except BaseException as exc:  # handed to the consumer, raised there
            self._offer((_DONE, exc))

    def _offer(self, item: t.Any) -> bool:
        """Queue `item` once there is room, unless the listing is cancelled first: a worker
        must never block on a listing nobody will read, or the process could not exit."""
        while not self._cancelled.is_set():
            try:
                self._queue.put(item, timeout=0.2)
            except queue.Full:
                continue
            return True
        return False

    def __iter__(self) -> t.Iterator[dict]:
        while True:
            item = self._queue.get()
            if isinstance(item, tuple) and item and item[0] is _DONE:
                if item[1] is not None:
                    raise item[1]
                return
            yield item

    def cancel(self) -> None:
        self._cancelled.set()


class _Workers:
    """A fixed pool of daemon threads. Unlike ThreadPoolExecutor's, they never keep the process
    alive: once a run has failed it exits at once, whatever request a worker still waits on."""

    def __init__(self, count: int) -> None:
        self._tasks: queue.SimpleQueue[t.Callable[[], None] | None] = queue.SimpleQueue()
        self._count = count
        for index in range(count):
            threading.Thread(target=self._work, name=f"blogger-{index}", daemon=True).start()

    def submit(self, task: t.Callable[[], None]) -> None:
        self._tasks.put(task)

    def _work(self) -> None:
        while (task := self._tasks.get()) is not None:
            task()

    def shutdown(self) -> None:
        for _ in range(self._count):
            self._tasks.put(None)


class ListingPrefetcher:
    """Runs planned listings in submission order, at most `window` ahead of the consumer; and
    the few read aside, out of that order."""

    def __init__(self, workers: int) -> None:
        self._pool = _Workers(workers)
        self._window = workers * 2
        self._planned: deque[tuple[ListingKey, t.Callable[[], t.Iterator[dict]]]] = deque()
        # Started listings in plan order; the consumer takes them in that order too.
        self._started: dict[ListingKey, _Listing] = {}
        self._aside: dict[ListingKey, _Listing] = {}
        self._lock = threading.Lock()

    def plan(self, key: ListingKey, pages: t.Callable[[], t.Iterator[dict]]) -> None:
        with self._lock:
            self._planned.append((key, pages))
            self._start_within_window()

    def read_aside(self, key: ListingKey, pages: t.Callable[[], t.Iterator[dict]]) -> None:
        """Start a small listing at once that the sync takes whenever it comes to it, outside
        the planned order, which taking it neither follows nor moves."""
        with self._lock:
            self._aside[key] = self._fetch(pages)

    def take(self, key: ListingKey) -> _Listing | None:
        """The prefetched listing for `key`, or None if it was not planned.

        Listings planned before `key` and not taken will never be: they are cancelled, so a
        plan that differs from the sync can cost a request but never block a worker.
        """
        with self._lock:
            if (aside := self._aside.pop(key, None)) is not None:
                return aside
            if key not in self._started and all(k != key for k, _ in self._planned):
                return None
            while key not in self._started:
                self._start(*self._planned.popleft())
            for earlier in list(self._started):
                listing = self._started.pop(earlier)
                if earlier == key:
                    break
                listing.cancel()
            self._start_within_window()
            return listing

    def _start_within_window(self) -> None:
        while self._planned and len(self._started) < self._window:
            self._start(*self._planned.popleft())

    def _start(self, key: ListingKey, pages: t.Callable[[], t.Iterator[dict]]) -> None:
        self._started[key] = self._fetch(pages)

    def _fetch(self, pages: t.Callable[[], t.Iterator[dict]]) -> _Listing:
        listing = _Listing(pages)
        self._pool.submit(listing.fetch)
        return listing

    def close(self) -> None:
        with self._lock:
            self._planned.clear()
            for listing in [*self._started.values(), *self._aside.values()]:
                listing.cancel()
            self._started.clear()
            self._aside.clear()
        self._pool.shutdown()
