"""Blogger v3 streams: users, blogs, and per blog its posts, pages and comments."""

from __future__ import annotations

import datetime as dt
import logging
import typing as t

from singer_sdk.helpers._state import get_state_if_exists
from singer_sdk.helpers.types import Context
from singer_sdk.streams._state import StreamStateManager

from tap_blogger.client import BloggerStream
from tap_blogger.errors import BloggerAPIError
from tap_blogger.records import format_utc, read_body


class UsersStream(BloggerStream):
    """`GET users/self`: the authenticated user."""

    name = "users"
    path = "users/self"
    resource = "User"
    records_key = None
    paginated = False

    @property
    def identifies_a_user(self) -> bool:
        """Whether the credentials name a user: an API key names none."""
        return self.tap.credential_mode != "api_key"

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        if not self.identifies_a_user:
            self.logger.warning(
                "Skipping stream 'users': an API key identifies no user (OAuth is needed)."
            )
            return
        yield from super().get_records(context)


class BlogsStream(BloggerStream):
    """`GET users/self/blogs`, or `GET blogs/{blogId}` / `blogs/byurl` for configured blogs."""

    name = "blogs"
    path = "users/self/blogs"
    resource = "Blog"
    paginated = False  # blogs.listByUser returns every blog at once

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        # A user has few blogs: hold them, so every blog's listings can be planned at once.
        blogs = list(self._blogs(context))
        self.tap.plan_listings(self.child_streams, [{"blog_id": b.get("id")} for b in blogs])
        yield from blogs

    @property
    def lists_the_users_blogs(self) -> bool:
        """Whether the blogs come from `users/self/blogs`: none is set in `blog_ids` or
        `blog_urls`."""
        return next(self.configured_blogs(), None) is None

    def _blogs(self, context: Context | None) -> t.Iterator[dict]:
        if self.lists_the_users_blogs:
            yield from super().get_records(context)
            return
        seen: set[str] = set()
        for kind, value in self.configured_blogs():
            blog = self.fetch_blog(kind, value, context)
            if blog.get("id") not in seen:
                seen.add(blog.get("id"))
                yield blog

    def configured_blogs(self) -> t.Iterator[tuple[str, str]]:
        """(setting, value) of each blog named in `blog_ids`, then in `blog_urls`."""
        for blog_id in self.config.get("blog_ids") or []:
            yield "blog_ids", blog_id
        for url in self.config.get("blog_urls") or []:
            yield "blog_urls", url

    def fetch_blog(self, setting: str, value: str, context: Context | None) -> dict:
        path, params = (
            (f"blogs/{value}", {}) if setting == "blog_ids" else ("blogs/byurl", {"url": value})
        )
        try:
            return next(self.request_pages(path, params, context, self._shaper.read_resource))
        except BloggerAPIError as exc:
            if exc.status in {403, 404}:
                access = (
                    "does not exist"
                    if exc.status == 404
                    else "cannot be read with these credentials"
                )
                raise BloggerAPIError(
                    f"The blog {value!r} in `{setting}` {access}. {exc}",
                    status=exc.status,
                    reason=exc.reason,
                ) from None
            raise

    def get_child_context(self, record: dict, context: Context | None) -> dict:
        return {"blog_id": record["id"]}


# The scratch copy's manager logs "Starting incremental sync" as it writes, as the SDK's
# does when the sync really starts: once is enough.
_SCRATCH_LOGGER = "tap-blogger.starting-values"
logging.getLogger(_SCRATCH_LOGGER).setLevel(logging.WARNING)


class BlogChildStream(BloggerStream):
    """A listing under one blog; its state is kept per blog."""

    parent_stream_type = BlogsStream
    extra_ids: t.ClassVar[tuple[str, ...]] = ("blog_id",)
    state_partitioning_keys: t.ClassVar[list[str]] = ["blog_id"]
    statuses_setting: t.ClassVar[str]

    def __init__(self, tap: t.Any) -> None:
        super().__init__(tap)
        self._starting_values: dict[str, t.Any] = {}

    def get_starting_replication_key_value(self, context: Context | None) -> t.Any:
        """The value the SDK writes as the sync of a blog starts, worked out by the SDK's own
        rules on a copy of the blog's state: a listing planned ahead of the sync must not put
        its blog into STATE messages before a sequential run would. A blog's starting value
        holds for the whole run, so it is worked out once, on the sync's thread."""
        if self.replication_key is None or context is None:
            return None
        blog_id = context["blog_id"]
        if blog_id not in self._starting_values:
            self._starting_values[blog_id] = self._starting_value({"blog_id": blog_id})
        return self._starting_values[blog_id]

    def _starting_value(self, partition: dict) -> t.Any:
        found = get_state_if_exists(self.tap_state, self.name, partition)
        copied = {"partitions": [{**found}]} if found else {}  # only a top-level key is written
        scratch = StreamStateManager(
            tap_name=_SCRATCH_LOGGER,
            stream_name=self.name,
            tap_state={"bookmarks": {self.name: copied}},
            state_partitioning_keys=self.state_partitioning_keys,
        )
        scratch.write_starting_replication_value(
            context=partition,
            replication_method=self.replication_method,
            replication_key=self.replication_key,
            config=dict(self.config),
            compare_start_date_fn=self.compare_start_date,
        )
        return scratch.get_starting_replication_value(partition, self.replication_method)

    def status_params(self) -> dict[str, t.Any]:
        statuses = [s.upper() for s in self.config[self.statuses_setting]]
        params: dict[str, t.Any] = {"status": statuses}
        if statuses != ["LIVE"] and self.statuses_setting != "comment_statuses":
            params["view"] = "ADMIN"  # non-live content is only listed in the owner's view
        return params

    def body_params(self) -> dict[str, t.Any]:
        return {"fetchBodies": str(bool(self.config["fetch_bodies"])).lower()}

    def lower_bound(self, context: Context | None) -> dt.datetime | None:
        """Earliest replication-key value still needed: the bookmark minus the lookback
        window (late writes, clock skew), never before `start_date`."""
        if self.replication_key is None:
            return None
        start = self.get_starting_timestamp(context)
        if start is None:
            return None
        bound = start - dt.timedelta(minutes=int(self.config["lookback_minutes"]))
        if start_date := self.tap.start_date:
            bound = max(bound, start_date)
        return bound

    def get_replication_key_signpost(self, context: Context | None = None) -> str | None:
        # Same string format as the records, so the SDK's string comparison is an instant one.
        if self.replication_key is None:
            return None
        return format_utc(dt.datetime.fromtimestamp(self._initialized_at / 1000, dt.timezone.utc))


class PostsStream(BlogChildStream):
    """`GET blogs/{blogId}/posts`, most recently updated first, bodies included."""

    name = "posts"
    path = "blogs/{blog_id}/posts"
    resource = "Post"
    replication_key = "updated"
    is_sorted = False  # newest first; the bookmark moves only when a blog's listing completes
    statuses_setting = "post_statuses"

    def list_params(self, context: Context | None) -> dict[str, t.Any]:
        params = {"orderBy": "UPDATED", "fetchImages": "true", **self.body_params()}
        params.update(self.status_params())
        if labels := self.config.get("labels"):
            params["labels"] = ",".join(labels)
        if start_date := self.tap.start_date:
            params["startDate"] = query_time(start_date)
        return params

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        bound = _as_record_time(self.lower_bound(context))
        for record in super().get_records(context):
            if bound is None or not _older_than(record.get("updated"), bound):
                yield record

    def stop_paging(self, body: dict, context: Context | None) -> bool:
        # Newest first: once a page reaches the bound, every later page is older still.
        bound = _as_record_time(self.lower_bound(context))
        return bound is not None and any(
            _older_than(item.get("updated"), bound) for item in self.records_in(body)
        )


class PagesStream(BlogChildStream):
    """`GET blogs/{blogId}/pages`. No date filter or ordering exists: always a full listing."""

    name = "pages"
    path = "blogs/{blog_id}/pages"
    resource = "Page"
    statuses_setting = "page_statuses"

    def list_params(self, context: Context | None) -> dict[str, t.Any]:
        return {**self.body_params(), **self.status_params()}

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        start_date = _as_record_time(self.tap.start_date)
        for record in super().get_records(context):
            if start_date is None or not _older_than(record.get("published"), start_date):
                yield record


class CommentsStream(BlogChildStream):
    """`GET blogs/{blogId}/comments` (comments.listByBlog): one listing per blog.

    Where the API refuses the blog-level listing (403/404, e.g. an API key on a blog the caller
    does not own), the blog's comments are read per post instead, skipping posts whose
    `replies.totalItems` is "0".
    """

    name = "comments"
    path = "blogs/{blog_id}/comments"
    resource = "Comment"
    extra_ids = ("blog_id", "post_id")
    # The API filters comments only on `published`; edits and moderation of old comments
    # need a full refresh (see README).
    replication_key = "published"
    is_sorted = False
    statuses_setting = "comment_statuses"

    def list_params(self, context: Context | None) -> dict[str, t.Any]:
        params = {**self.body_params(), **self.status_params()}
        if (bound := self.lower_bound(context)) is not None:
            params["startDate"] = query_time(bound)
        return params

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        assert context is not None  # a child of blogs always has its blog
        path, params = self.listing(context)
        pages = self.request_pages(path, params, context)
        try:
            first = next(pages)
        except BloggerAPIError as exc:
            if exc.status not in {403, 404}:
                raise
            self.logger.warning(
                "Blog %s: the blog-level comment listing was refused (HTTP %s); reading "
                "comments per post instead (only posts that have replies).",
                context["blog_id"],
                exc.status,
            )
            yield from self._comments_per_post(context, params)
            return
        yield from self.records_in(first)
        for body in pages:
            yield from self.records_in(body)

    def _comments_per_post(self, context: Context, params: dict) -> t.Iterable[dict]:
        blog_id = context["blog_id"]
        posts = self.request_pages(
            f"blogs/{blog_id}/posts",
            {"fetchBodies": "false", "status": ["LIVE"]},
            context,
            read_body,  # posts, read for their ids and reply counts only
        )
        statuses = params.pop("status")
        for body in posts:
            for post in body.get("items") or []:
                if str((post.get("replies") or {}).get("totalItems", "")) == "0":
                    continue
                for status in statuses:
                    path = f"blogs/{blog_id}/posts/{post['id']}/comments"
                    for page in self.request_pages(path, {**params, "status": status}, context):
                        yield from self.records_in(page)

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        record = super().post_process(row, context)
        if record is not None:
            record["post_id"] = (record.get("post") or {}).get("id")
        return record


def query_time(moment: dt.datetime) -> str:
    """A lower bound as the API's date parameters take it: whole seconds (rounded down, so
    nothing at the bound is lost) in UTC, the plainest RFC 3339 any parser accepts."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _as_record_time(moment: dt.datetime | None) -> str | None:
    return None if moment is None else format_utc(moment)


def _older_than(value: str | None, bound: str) -> bool:
    """Whether a shaped record's timestamp lies before `bound` (from `_as_record_time`): both
    are in the records' fixed-width UTC format, so they compare as strings, without a parse
    per record."""
    return value is not None and value < bound
