"""tap-blogger: settings, start-up checks and the stream list."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import ipaddress
import sys
import threading
import typing as t
from collections import Counter
from urllib.parse import urlsplit

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError

from tap_blogger import __version__, streams
from tap_blogger.auth import build_authenticator
from tap_blogger.client import listing_key
from tap_blogger.concurrency import ListingPrefetcher, RateLimiter
from tap_blogger.errors import TapBloggerError
from tap_blogger.output import BatchingWriter
from tap_blogger.records import UTC, parse_timestamp
from tap_blogger.redact import protect_secrets

SECRET_SETTINGS = ("client_secret", "refresh_token", "access_token", "api_key")
POST_STATUSES = ["live", "draft", "scheduled", "soft_trashed"]
PAGE_STATUSES = ["live", "draft", "soft_trashed"]
COMMENT_STATUSES = ["live", "pending", "spam", "emptied"]
DEFAULT_CONCURRENCY = 8
DEFAULT_REQUESTS_PER_SECOND = 100


def _statuses(name: str, allowed: list[str], what: str) -> th.Property:
    return th.Property(
        name,
        th.ArrayType(th.StringType(allowed_values=allowed)),
        default=["live"],
        description=f"{what} to extract, any of {', '.join(allowed)}. Anything beyond `live` "
        "needs the blog owner's OAuth credentials.",
    )


# The tap's own settings; the SDK adds its built-in ones (stream maps, flattening, batch).
SETTINGS = th.PropertiesList(
    th.Property("client_id", th.StringType, description="OAuth2 client id (Google Cloud console)."),
    th.Property("client_secret", th.StringType, secret=True, description="OAuth2 client secret."),
    th.Property(
        "refresh_token",
        th.StringType,
        secret=True,
        description="OAuth2 refresh token (get one with `tap-blogger-auth`).",
    ),
    th.Property(
        "access_token",
        th.StringType,
        secret=True,
        description="A ready OAuth2 bearer token, instead of the three settings above. It "
        "cannot be refreshed: runs longer than its lifetime (about an hour) fail.",
    ),
    th.Property(
        "api_key",
        th.StringType,
        secret=True,
        description="Google API key: read-only access to public blogs. Needs `blog_ids` or "
        "`blog_urls`; extracts live content only and no `users`.",
    ),
    th.Property(
        "api_url",
        th.StringType,
        default="https://blogger.googleapis.com/v3",
        description="Blogger API base URL. Must be https unless the host is loopback.",
    ),
    th.Property(
        "token_url",
        th.StringType,
        default="https://oauth2.googleapis.com/token",
        description="OAuth2 token endpoint. Must be https unless the host is loopback.",
    ),
    th.Property(
        "blog_ids",
        th.ArrayType(th.StringType),
        description="Blog ids to extract. Default: every blog of the authenticated user.",
    ),
    th.Property(
        "blog_urls",
        th.ArrayType(th.StringType),
        description="Blog URLs to extract (resolved with `blogs/byurl`), merged with `blog_ids`.",
    ),
    th.Property(
        "start_date",
        th.DateTimeType,
        description="RFC 3339 date-time: posts, pages and comments published before it are "
        "not extracted.",
    ),
    th.Property(
        "lookback_minutes",
        th.IntegerType,
        default=60,
        description="Incremental runs re-read this many minutes before the bookmark, to "
        "absorb clock skew and late writes.",
    ),
    _statuses("post_statuses", POST_STATUSES, "Post statuses"),
    _statuses("page_statuses", PAGE_STATUSES, "Page statuses"),
    _statuses("comment_statuses", COMMENT_STATUSES, "Comment statuses"),
    th.Property(
        "fetch_bodies",
        th.BooleanType,
        default=True,
        description="Include `content` (the HTML body) of posts, pages and comments. False "
        "makes lean runs.",
    ),
    th.Property(
        "labels",
        th.ArrayType(th.StringType),
        description="Only posts with any of these labels (filtered by the API).",
    ),
    th.Property("user_agent", th.StringType, description="User-Agent header to send."),
    th.Property(
        "request_timeout",
        th.NumberType,
        default=60,
        description="Seconds to wait for one response before the attempt counts as failed.",
    ),
    th.Property(
        "retry_initial_delay_seconds",
        th.NumberType,
        default=1.0,
        description="Wait before the first retry; it doubles for the next one (3 attempts "
        "per request in total). A Retry-After from the API wins, capped at 20 s.",
    ),
    th.Property(
        "max_concurrency",
        th.IntegerType,
        default=DEFAULT_CONCURRENCY,
        description="Listings (of different blogs and streams) read at the same time. "
        "Pages of one listing are always sequential; 1 reads everything sequentially. "
        "Records are emitted in the same order either way.",
    ),
    th.Property(
        "requests_per_second",
        th.NumberType,
        default=DEFAULT_REQUESTS_PER_SECOND,
        description="Most API requests in any one second, over all concurrent listings, "
        "so concurrency never turns into 429 storms; after a 429 the tap slows down further "
        "by itself. 0 = no ceiling.",
    ),
)


class TapBlogger(Tap):
    """Singer tap for the Google Blogger API v3."""

    name = "tap-blogger"
    message_writer_class = BatchingWriter  # msgspec encoding, one write per batch of records

    config_jsonschema = SETTINGS.to_dict()

    @classmethod
    def get_plugin_version(cls) -> str:
        # Read once at import; the SDK would look the distribution up again on every start.
        return __version__

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        self._authenticator: t.Any = None
        self._auth_lock = threading.Lock()
        self.request_counts: Counter[str] = Counter()
        self.prefetcher: ListingPrefetcher | None = None
        super().__init__(*args, **kwargs)
        self.rate_limiter = RateLimiter(float(self.config["requests_per_second"]))
        protect_secrets(str(self.config.get(key) or "") for key in SECRET_SETTINGS)

    # Start-up checks

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        errors = super()._validate_config(raise_errors=False)
        errors += config_problems(self.config, set(self.config_jsonschema["properties"]))
        if errors and raise_errors:
            raise ConfigValidationError(
                "Invalid tap-blogger configuration: " + " ".join(errors),
                errors=errors,
                schema=self.config_jsonschema,
            )
        return errors

    @property
    def credential_mode(self) -> str:
        if self.config.get("refresh_token"):
            return "oauth"
        return "access_token" if self.config.get("access_token") else "api_key"

    @property
    def start_date(self) -> dt.datetime | None:
        value = self.config.get("start_date")
        return parse_setting_datetime(value) if value else None

    @property
    def user_agent(self) -> str:
        return self.config.get("user_agent") or f"tap-blogger/{__version__}"

    @property
    def authenticator(self) -> t.Any:
        """One authenticator for the whole run: one token request, shared by every stream."""
        with self._auth_lock:
            if self._authenticator is None:
                self._authenticator = build_authenticator(
                    self.config,
                    timeout=float(self.config["request_timeout"]),
                    user_agent=self.user_agent,
                )
            return self._authenticator

    # Streams and run

    def discover_streams(self) -> list[streams.BloggerStream]:
        # Children follow their parent, so each blog's posts are read before its comments.
        return [
            streams.UsersStream(self),
            streams.BlogsStream(self),
            streams.PostsStream(self),
            streams.PagesStream(self),
            streams.CommentsStream(self),
        ]

    @contextlib.contextmanager
    def api_request(self, stream_name: str) -> t.Iterator[None]:
        """Every API request runs inside: under the shared rate limit, and counted."""
        with self.rate_limiter.request():
            with self._auth_lock:
                self.request_counts[stream_name] += 1
            yield

    def plan_listings(self, streams_: t.Sequence[t.Any], contexts: list[dict]) -> None:
        """Tell the prefetcher which listings the sync will read, in the order it will."""
        if self.prefetcher is None:
            return
        for context in contexts:
            for stream in streams_:
                if not stream.selected:
                    continue
                # The bookmark decides the query (startDate) and where paging stops. It is
                # worked out now, on the sync's thread: a worker reading the live state could
                # meet the sync writing the same blog's entry.
                stream.get_starting_replication_key_value(context)
                self._plan(stream, dict(context))

    def _plan_first_reads(self) -> None:
        """The blog list, which every other listing waits for, and `users/self`, which the SDK
        syncs last (streams run in name order): both are read at once, side by side."""
        if self.prefetcher is None:
            return
        blogs, users = self.streams["blogs"], self.streams["users"]
        if (blogs.selected or blogs.has_selected_descendents) and blogs.lists_the_users_blogs:
            self._plan(blogs, None)
        if users.selected and users.identifies_a_user:
            self._plan(users, None, aside=True)

    def _plan(self, stream: t.Any, context: dict | None, *, aside: bool = False) -> None:
        """Hand one listing of `stream` for `context` to the prefetcher: in the sync's order,
        or `aside` of it."""
        assert self.prefetcher is not None  # callers plan only when prefetching
        path, params = stream.listing(context)
        start = self.prefetcher.read_aside if aside else self.prefetcher.plan
        start(
            listing_key(path, params), functools.partial(stream.fetch_pages, path, params, context)
        )

    def prefetched(self, key: tuple[str, str]) -> t.Any:
        return None if self.prefetcher is None else self.prefetcher.take(key)

    def sync_all(self) -> None:
        workers = int(self.config["max_concurrency"])
        self.prefetcher = ListingPrefetcher(workers) if workers > 1 else None
        try:
            self._plan_first_reads()
            super().sync_all()
        finally:
            if self.prefetcher is not None:
                self.prefetcher.close()
            token_requests = getattr(self._authenticator, "token_requests", 0)
            self.logger.info(
                "Requests made: %d (%s; token: %d).",
                sum(self.request_counts.values()) + token_requests,
                ", ".join(f"{k}: {v}" for k, v in sorted(self.request_counts.items())) or "none",
                token_requests,
            )

    def run_connection_test(self) -> bool:  # type: ignore[override]
        """`--test`: the token request and one or two cheap reads, not a sync."""
        streams_ = self.streams
        blogs = streams_["blogs"]
        if streams_["users"].identifies_a_user:
            user = next(iter(streams_["users"].request_records(None)))
            who = f"authenticated as {user.get('displayName') or user.get('id')}"
        else:
            who = "API key accepted"
        if first := next(blogs.configured_blogs(), None):
            blog = blogs.fetch_blog(*first, None)
            reach = f"blog {blog.get('name')!r} ({blog.get('id')}) is readable"
        else:
            count = sum(1 for _ in blogs.request_records(None))
            reach = f"{count} blog(s) readable"
        self.logger.info("Connection test passed: %s; %s.", who, reach)
        return True

    @classmethod
    def invoke(cls, *args: t.Any, **kwargs: t.Any) -> None:  # type: ignore[override]
        # What the imports built lives as long as the process: frozen, it is left out of the
        # cyclic collector's full passes, which otherwise walk all of it again and again during
        # a run (about a tenth of a small run's CPU). Records are freed by reference counting.
        gc.freeze()
        with _explained_failures():
            super().invoke(*args, **kwargs)

    @classmethod
    def cb_test(cls, ctx: t.Any, param: t.Any, value: t.Any) -> None:  # type: ignore[override]
        with _explained_failures():
            super().cb_test(ctx, param, value)


@contextlib.contextmanager
def _explained_failures() -> t.Iterator[None]:
    """A failure the tap explains ends the process with its message and exit code 1."""
    try:
        yield
    except TapBloggerError as exc:
        TapBlogger.logger.error("tap-blogger stopped: %s", exc)
        sys.exit(1)


def parse_setting_datetime(value: str) -> dt.datetime:
    """RFC 3339 date-time; a bare date or a naive time is read as UTC."""
    try:
        return parse_timestamp(value)
    except ValueError:
        parsed = dt.datetime.fromisoformat(value.strip())
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _is_safe_url(url: str) -> bool:
    """https, or plain http to a loopback host (decided without a DNS look-up)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def config_problems(config: t.Mapping[str, t.Any], known: set[str]) -> list[str]:
    """Everything wrong with a config, each naming the settings to fix."""
    problems = [
        f"Unknown setting `{key}`; see `tap-blogger --about` for the settings."
        for key in sorted(set(config) - known)
    ]
    problems += [
        f"Setting `{key}` is an empty string; remove it or give it a value."
        for key, value in config.items()
        if isinstance(value, str) and not value.strip()
    ]
    present = {k for k, v in config.items() if isinstance(v, str) and v.strip()}
    oauth = {"client_id", "client_secret", "refresh_token"}
    if oauth & present and not oauth <= present:
        missing = ", ".join(f"`{k}`" for k in sorted(oauth - present))
        problems.append(f"OAuth2 credentials are incomplete: also set {missing}.")
    elif not (oauth <= present or {"access_token", "api_key"} & present):
        problems.append(
            "No credentials: set `client_id`, `client_secret` and `refresh_token` (OAuth2), "
            "or `access_token`, or `api_key` together with `blog_ids`/`blog_urls`."
        )
    if present & {"api_key"} and not present & (oauth | {"access_token"}):
        if not (config.get("blog_ids") or config.get("blog_urls")):
            problems.append(
                "`api_key` reads public blogs only: also set `blog_ids` or `blog_urls`."
            )
        for setting in ("post_statuses", "page_statuses", "comment_statuses"):
            extra = sorted(set(config.get(setting) or ["live"]) - {"live"})
            if extra:
                problems.append(
                    f"`{setting}` asks for {', '.join(extra)}, which needs the blog owner's "
                    "OAuth credentials; with `api_key` only `live` can be read."
                )
    for setting in ("api_url", "token_url"):
        url = config.get(setting)
        if isinstance(url, str) and url.strip() and not _is_safe_url(url):
            problems.append(
                f"`{setting}` must be an https:// URL (plain http is allowed only for loopback "
                f"hosts), got {urlsplit(url).scheme or 'no'} scheme."
            )
    if isinstance(start := config.get("start_date"), str) and start.strip():
        try:
            parse_setting_datetime(start)
        except ValueError:
            problems.append(
                f"`start_date` {start!r} is not an RFC 3339 date-time (e.g. 2024-01-31T00:00:00Z)."
            )
    if isinstance(workers := config.get("max_concurrency"), int) and workers < 1:
        problems.append("`max_concurrency` must be at least 1 (1 = sequential).")
    for setting in (
        "lookback_minutes",
        "request_timeout",
        "retry_initial_delay_seconds",
        "requests_per_second",
    ):
        value = config.get(setting)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            problems.append(f"`{setting}` must not be negative.")
    return problems
