"""Fault injection: decides which requests fail and how; the server renders the failure."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass

KINDS = (
    "429",
    "500",
    "502",
    "503",
    "504",
    "403_rate",
    "403_user_rate",
    "403_daily",
    "400",
    "404",
    "401",
    "drop",
    "truncate",
    "slow",
    "html200",
    "repeat_token",
)
# What a well-behaved client should survive by retrying.
TRANSIENT_KINDS = (
    "429",
    "500",
    "502",
    "503",
    "504",
    "403_rate",
    "403_user_rate",
    "drop",
    "truncate",
)


@dataclass(frozen=True)
class Fault:
    kind: str
    retry_after: float | None = None  # seconds, sent as Retry-After with "429"
    delay_s: float = 1.0  # only for "slow"


@dataclass
class _Rule:
    fault: Fault
    routes: frozenset[str] | None
    remaining: int | None  # None: forever
    path_contains: str | None

    def matches(self, route: str, path: str, is_api: bool) -> bool:
        """`path` is the request's path and query, as `path?query`."""
        if self.routes is None:
            if not is_api:
                return False
        elif route not in self.routes:
            return False
        return self.path_contains is None or self.path_contains in path


def _routes(route: str | Iterable[str] | None) -> frozenset[str] | None:
    if route is None:
        return None
    return frozenset([route] if isinstance(route, str) else route)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")


class FaultInjector:
    """Scripted faults (`add`, `always`) take precedence over a random `storm`.

    `route=None` matches every /v3 API route but not the token or authorization endpoints;
    name "token" explicitly to fault those. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._storm: tuple[float, tuple[str, ...], int, bool] | None = None
        self._storm_rng = random.Random(0)
        self._streak: dict[str, int] = {}
        self.injected: list[tuple[str, str]] = []

    def add(
        self,
        kind: str,
        route: str | Iterable[str] | None = None,
        times: int = 1,
        retry_after: float | None = None,
        path_contains: str | None = None,
        delay_s: float = 1.0,
    ) -> None:
        """The next `times` matching requests get `kind`."""
        _check_kind(kind)
        with self._lock:
            self._rules.append(
                _Rule(Fault(kind, retry_after, delay_s), _routes(route), times, path_contains)
            )

    def always(
        self,
        kind: str,
        route: str | Iterable[str] | None = None,
        retry_after: float | None = None,
        path_contains: str | None = None,
        delay_s: float = 1.0,
    ) -> None:
        """Every matching request gets `kind` until `clear()`."""
        _check_kind(kind)
        with self._lock:
            self._rules.append(
                _Rule(Fault(kind, retry_after, delay_s), _routes(route), None, path_contains)
            )

    def storm(
        self,
        rate: float = 0.25,
        kinds: Iterable[str] = TRANSIENT_KINDS,
        max_consecutive: int = 2,
        seed: int = 0,
        include_token: bool = False,
    ) -> None:
        """Fail each API request with probability `rate`, but the same request (method, path and
        query) never more than `max_consecutive` times in a row, so bounded retries succeed."""
        kinds = tuple(kinds)
        if not kinds:
            raise ValueError("a storm needs at least one fault kind")
        for kind in kinds:
            _check_kind(kind)
        with self._lock:
            self._storm = (rate, kinds, max_consecutive, include_token)
            self._storm_rng = random.Random(seed)
            self._streak.clear()

    def clear(self) -> None:
        """Remove every rule and stop the storm; `injected` is kept."""
        with self._lock:
            self._rules.clear()
            self._storm = None
            self._streak.clear()

    def pick(self, route: str, request_key: str, path: str, is_api: bool) -> Fault | None:
        """The fault for this request, if any; records it in `injected`."""
        with self._lock:
            fault = self._pick_rule(route, path, is_api) or self._pick_storm(
                route, request_key, is_api
            )
            if fault is not None:
                self.injected.append((route, fault.kind))
            return fault

    def _pick_rule(self, route: str, path: str, is_api: bool) -> Fault | None:
        for rule in self._rules:
            if rule.matches(route, path, is_api):
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                return rule.fault
        return None

    def _pick_storm(self, route: str, request_key: str, is_api: bool) -> Fault | None:
        if self._storm is None:
            return None
        rate, kinds, max_consecutive, include_token = self._storm
        if not (is_api or (include_token and route == "token")):
            return None
        streak = self._streak.get(request_key, 0)
        if streak < max_consecutive and self._storm_rng.random() < rate:
            self._streak[request_key] = streak + 1
            kind = self._storm_rng.choice(kinds)
            return Fault(kind, retry_after=1 if kind == "429" else None)
        self._streak.pop(request_key, None)
        return None
