"""Markdown tables of the measurements, and the project's performance targets as PASS/FAIL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bench.runner import Result
from tests.blogger_emulator.server import ROUTES

BIG_DATASET = "big"
# The reference for "peak RSS does not grow with the data": bench2 (19,355 records) is the
# dataset nearest ~10k records that every default run measures anyway.
RSS_REFERENCE_DATASET = "bench2"
RSS_LIMIT_MB = 120


@dataclass
class Table:
    dataset: str
    latency_ms: float
    rate_limit_rps: float | None
    results: dict[str, Result]

    @property
    def title(self) -> str:
        limit = (
            f"rate limit {self.rate_limit_rps:g} req/s" if self.rate_limit_rps else "no rate limit"
        )
        return f"{self.dataset}, {self.latency_ms:g} ms latency, {limit}"

    def ok(self, key: str) -> Result | None:
        result = self.results.get(key)
        return result if result is not None and result.error is None else None


def _ratio(value: float, best: float) -> str:
    return f"{value / best:.2f}x" if best else "-"


def _metric_cells(rows: list[Result]) -> list[list[str]]:
    """requests, wall, CPU, RSS and records/s, each with its ratio to the best row."""
    best_requests = min(r.requests for r in rows)
    best_wall = min(r.wall_s for r in rows)
    best_cpu = min(r.cpu_s for r in rows)
    best_rss = min(r.peak_rss_mb for r in rows)
    best_rate = max(r.records_per_s for r in rows)
    return [
        [
            f"{r.requests:,.0f} ({_ratio(r.requests, best_requests)})",
            f"{r.wall_s:.2f} ({_ratio(r.wall_s, best_wall)})",
            f"{r.cpu_s:.2f} ({_ratio(r.cpu_s, best_cpu)})",
            f"{r.peak_rss_mb:,.0f} ({_ratio(r.peak_rss_mb, best_rss)})",
            f"{r.records:,.0f}",
            # Inverted, so that for every metric 1.00x is the best and larger is worse.
            f"{r.records_per_s:,.0f} ({_ratio(best_rate, r.records_per_s)})",
        ]
        for r in rows
    ]


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    """A padded markdown table: the first column left-aligned, numbers right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * widths[0], *("-" * (w - 1) + ":" for w in widths[1:])]
    return "\n".join([line(header), line(rule), *map(line, rows)])


def render_table(table: Table) -> str:
    done = [r for r in table.results.values() if r.error is None]
    used = {route for r in done for route, n in r.by_route.items() if n}
    routes = [route for route in ROUTES if route in used]
    header = [
        "client",
        "runs",
        "requests",
        *routes,
        "429s",
        "wall s",
        "CPU s",
        "peak RSS MB",
        "records",
        "records/s",
    ]
    metrics = iter(_metric_cells(done)) if done else iter(())
    rows = []
    for r in table.results.values():
        if r.error is not None:
            rows.append([r.client.label, "failed", *[""] * (len(header) - 2)])
            continue
        requests, *rest = next(metrics)
        by_route = [f"{r.by_route.get(route, 0):,.0f}" for route in routes]
        rows.append(
            [r.client.label, str(r.runs), requests, *by_route, f"{r.rate_limited:,.0f}", *rest]
        )
    text = f"### {table.title}\n\n{_markdown(header, rows)}"
    failures = [f"{r.client.label} failed, {r.error}" for r in table.results.values() if r.error]
    return "\n\n".join([text, *failures])


# ---- targets ------------------------------------------------------------------------------------


def _check(passed: bool, text: str) -> str:
    return f"{'PASS' if passed else 'FAIL'}  {text}"


def _requests_targets(tables: list[Table]) -> Iterator[str]:
    for t in tables:
        tap, floor, seed = t.ok("tap"), t.ok("floor"), t.ok("dlt-seed")
        if tap and floor:
            yield _check(
                tap.requests <= floor.requests + 1,
                f"requests = floor's (+1 allowed): {tap.requests:,.0f} vs floor "
                f"{floor.requests:,.0f} ({t.title})",
            )
        if tap and seed:
            yield _check(
                seed.requests >= 100 * tap.requests,
                f">=100x fewer requests than dlt as the seed: {seed.requests / tap.requests:,.0f}x "
                f"({tap.requests:,.0f} vs {seed.requests:,.0f}; {t.title})",
            )


def _zero_latency_targets(tables: list[Table]) -> Iterator[str]:
    for t in tables:
        tap, floor, best = t.ok("tap"), t.ok("floor"), t.ok("dlt-best")
        if t.latency_ms != 0 or not tap:
            continue
        if floor:
            yield _check(
                tap.wall_s <= 1.3 * floor.wall_s,
                f"wall <= 1.3x floor: {tap.wall_s / floor.wall_s:.2f}x ({tap.wall_s:.2f} s vs "
                f"{floor.wall_s:.2f} s; {t.title})",
            )
            yield _check(
                tap.cpu_s <= 1.5 * floor.cpu_s,
                f"CPU <= 1.5x floor: {tap.cpu_s / floor.cpu_s:.2f}x ({tap.cpu_s:.2f} s vs "
                f"{floor.cpu_s:.2f} s; {t.title})",
            )
        if best:
            yield _check(
                tap.cpu_s <= 0.5 * best.cpu_s,
                f"CPU <= 0.5x dlt best plan (extract): {tap.cpu_s / best.cpu_s:.2f}x "
                f"({tap.cpu_s:.2f} s vs {best.cpu_s:.2f} s; {t.title})",
            )


def _concurrency_targets(tables: list[Table]) -> Iterator[str]:
    for t in tables:
        tap, floor = t.ok("tap"), t.ok("floor")
        if t.dataset != "agency" or t.latency_ms == 0 or not tap:
            continue
        if floor:
            yield _check(
                tap.wall_s <= floor.wall_s / 3,
                f"wall <= 1/3 of floor with default max_concurrency: "
                f"{tap.wall_s / floor.wall_s:.2f}x ({tap.wall_s:.2f} s vs {floor.wall_s:.2f} s; "
                f"{t.title})",
            )
        yield _check(tap.rate_limited == 0, f"zero 429s: {tap.rate_limited:,.0f} ({t.title})")


def _memory_targets(tables: list[Table]) -> Iterator[str]:
    for big in (t for t in tables if t.dataset == BIG_DATASET):
        tap = big.ok("tap")
        if not tap:
            continue
        yield _check(
            tap.peak_rss_mb <= RSS_LIMIT_MB,
            f"peak RSS on big <= {RSS_LIMIT_MB} MB: {tap.peak_rss_mb:.0f} MB ({big.title})",
        )
        for ref in tables:
            ref_tap = ref.ok("tap")
            if (
                ref.dataset == RSS_REFERENCE_DATASET
                and ref.latency_ms == big.latency_ms
                and ref_tap
            ):
                yield _check(
                    tap.peak_rss_mb <= 1.1 * ref_tap.peak_rss_mb,
                    f"peak RSS on big within 10% of {RSS_REFERENCE_DATASET}'s: "
                    f"{tap.peak_rss_mb / ref_tap.peak_rss_mb - 1:+.0%} ({tap.peak_rss_mb:.0f} MB "
                    f"vs {ref_tap.peak_rss_mb:.0f} MB at {big.latency_ms:g} ms)",
                )


TARGETS: tuple[tuple[str, Callable[[list[Table]], Iterator[str]]], ...] = (
    ("requests", _requests_targets),
    ("wall and CPU at 0 ms", _zero_latency_targets),
    ("concurrency on agency with latency", _concurrency_targets),
    ("memory on big", _memory_targets),
)


def render_targets(tables: list[Table]) -> str:
    lines = []
    for name, target in TARGETS:
        found = list(target(tables))
        lines += found or [f"SKIP  {name}: not measured in this run"]
    return "\n".join(lines)
