"""The base stream: what every Blogger v3 request shares.

Base URL and auth from the tap, `maxResults=500` + `nextPageToken` pagination, one JSON parse
per response, Google's retry rules (3 attempts), and error messages that name the status, the
endpoint and what to do.
"""

from __future__ import annotations

import functools
import random
import threading
import typing as t
from urllib.parse import urlencode, urlparse

import msgspec
import requests
from singer_sdk import RESTStream
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.helpers._util import utc_now
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.helpers.types import Context
from singer_sdk.pagination import BaseAPIPaginator, SinglePagePaginator
from singer_sdk.singerlib import RecordMessage

from tap_blogger.auth import GoogleOAuthAuthenticator
from tap_blogger.errors import BloggerAPIError, PaginationError
from tap_blogger.records import NotAnObjectError, RecordShaper
from tap_blogger.schemas import stream_schema

if t.TYPE_CHECKING:
    from backoff.types import Details

    from tap_blogger.tap import TapBlogger

MAX_RESULTS = 500  # the API's cap; without maxResults a page holds 10 items
MAX_ATTEMPTS = 3  # per request, as the source's retry rules say
MAX_RETRY_AFTER_SECONDS = 20.0  # a larger Retry-After is capped so a run never stalls for long
RETRY_STATUSES = frozenset({500, 502, 503, 504})  # and 429, which is a RateLimited
# 403 reasons that are throttling, not refusal: the legacy `errors[].reason` spellings and the
# `google.rpc.ErrorInfo` one that newer Google front ends send in `details`.
RATE_LIMIT_REASONS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED"}
)
JITTER = 0.1  # at most 10% on top of each wait, so the factor between waits stays close to 2

_decode = msgspec.json.Decoder().decode


class GoogleError(t.NamedTuple):
    """The parts of Google's JSON error body a user needs: reason and message."""

    reason: str
    message: str

    @classmethod
    def from_response(cls, response: requests.Response) -> GoogleError:
        try:
            error = _decode(response.content).get("error")
        except (msgspec.DecodeError, AttributeError):
            error = None
        if not isinstance(error, dict):
            kind = response.headers.get("Content-Type", "no content type").split(";")[0]
            return cls("", f"non-JSON error body ({kind}, {len(response.content)} bytes)")
        first = _first_dict(error.get("errors"))
        info = _first_dict(error.get("details"), lambda d: "reason" in d)
        reason = first.get("reason") or info.get("reason") or error.get("status") or ""
        return cls(str(reason), str(error.get("message") or first.get("message") or ""))


def _first_dict(
    items: t.Any, accept: t.Callable[[dict], bool] = lambda _: True
) -> dict[str, t.Any]:
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict) and accept(item):
            return item
    return {}


class RateLimited(RetriableAPIError):
    """Google throttled the request (429, or 403 with a rate-limit reason): retried, and every
    worker slows down with it."""


class TokenRejected(RetriableAPIError):
    """A 401 on a data call: the token is refreshed and the request retried at once."""


def listing_key(path: str, params: dict[str, t.Any]) -> tuple[str, str]:
    return path, urlencode(sorted(params.items()), doseq=True)


def _endpoint(request: requests.PreparedRequest | None) -> str:
    if request is None:
        return "the Blogger API"
    return f"{request.method} {urlparse(request.url).path}"


def _what_to_do(status: int | None, reason: str) -> str:
    if reason in {"dailyLimitExceeded", "quotaExceeded"}:
        return (
            "The Google project's daily Blogger quota is used up: rerun after the quota resets "
            "(midnight Pacific time) or ask Google for more. State is kept, so the rerun resumes."
        )
    if status == 401:
        return (
            "The credentials were not accepted: check `refresh_token`/`client_id`/"
            "`client_secret`, or replace an expired `access_token`, or check `api_key`."
        )
    if status == 403:
        return (
            "The authenticated user (or API key) may not read this resource: check `blog_ids`/"
            "`blog_urls`, and use the blog owner's OAuth credentials for drafts, pending "
            "comments and other non-live content."
        )
    if status == 404:
        return "Check that the ids in `blog_ids` / `blog_urls` exist and are spelled right."
    if status == 400:
        return "Check the settings that shape this request (`start_date`, statuses, `labels`)."
    return (
        "Google is throttling or failing: rerun later. The state of the last completed run is "
        "kept, so nothing is lost and the rerun resumes."
    )


def describe_failure(response: requests.Response, attempts: int) -> tuple[str, GoogleError]:
    error = GoogleError.from_response(response)
    detail = ", ".join(part for part in error if part)
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    message = (
        f"Blogger API returned HTTP {response.status_code}{tries} for "
        f"{_endpoint(response.request)}"
        f"{f' ({detail})' if detail else ''}. {_what_to_do(response.status_code, error.reason)}"
    )
    return message, error


class PageTokenPaginator(BaseAPIPaginator[str | None]):
    """Follows `nextPageToken` until it is absent, whatever a page's item count.

    A token seen before means the API is sending the list in a circle: stop with an error
    rather than loop (or end early and lose the rest silently).
    """

    def __init__(self, stream: BloggerStream, context: Context | None = None) -> None:
        super().__init__(None)
        self._stream = stream
        self._context = context
        self._seen: set[str] = set()

    def get_next(self, response: requests.Response) -> str | None:
        body = response.blogger_body  # type: ignore[attr-defined]
        token = body.get("nextPageToken")
        if not token or self._stream.stop_paging(body, self._context):
            return None
        if token in self._seen:
            raise PaginationError(
                f"Blogger API repeated a page token on {_endpoint(response.request)} after "
                f"{self.count} pages; stopping instead of looping. Rerun later; if it persists, "
                "the list is inconsistent on Google's side."
            )
        self._seen.add(token)
        return token

    def continue_if_empty(self, response: requests.Response) -> bool:
        return True


class BloggerStream(RESTStream[str | None]):
    """One Blogger v3 resource listing."""

    #: Discovery-document resource the records are (User, Blog, Post, Page, Comment).
    resource: t.ClassVar[str]
    #: Parent ids declared at the top level of every record. `blog_id` is the state partition's
    #: key, which the SDK adds to each record; others are set in `post_process`.
    extra_ids: t.ClassVar[tuple[str, ...]] = ()
    #: Response key holding the records; None for endpoints that return one resource.
    records_key: t.ClassVar[str | None] = "items"
    paginated: t.ClassVar[bool] = True

    primary_keys = ("id",)
    # Records are converted and checked by RecordShaper in one walk; the SDK need not redo it.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    _LOG_REQUEST_METRICS = False  # the tap logs its own request totals, without URLs

    def __init__(self, tap: TapBlogger) -> None:
        self._sessions = threading.local()
        super().__init__(tap, schema=stream_schema(self.resource, self.extra_ids))
        self._shaper = RecordShaper(self.name, self.schema, self.logger, self.records_key)
        self._schema_written = False

    @property
    def tap(self) -> TapBlogger:
        return self._tap  # type: ignore[return-value]

    @property
    def url_base(self) -> str:
        return self.config["api_url"].rstrip("/") + "/"

    @property
    def authenticator(self) -> t.Any:
        return self.tap.authenticator

    @property
    def timeout(self) -> float:  # type: ignore[override]
        return float(self.config["request_timeout"])

    @property
    def user_agent(self) -> str:  # type: ignore[override]
        return self.tap.user_agent

    def get_new_paginator(self, context: Context | None = None) -> BaseAPIPaginator:
        return PageTokenPaginator(self, context) if self.paginated else SinglePagePaginator()

    def stop_paging(self, body: dict, context: Context | None) -> bool:
        """Whether the page just read makes further pages unnecessary (incremental streams).
        Decided from the page alone, so a prefetching worker decides as the sync would."""
        return False

    def list_params(self, context: Context | None) -> dict[str, t.Any]:
        """Query parameters of this stream's listing besides paging."""
        return {}

    def request_pages(
        self,
        path: str,
        params: dict[str, t.Any],
        context: Context | None,
        read: t.Callable[[bytes], dict] | None = None,
    ) -> t.Iterator[dict]:
        """Yield the parsed body of each page of a listing: prefetched if the listing was
        planned ahead, else requested here, one page after the other."""
        listing = self.tap.prefetched(listing_key(path, params))
        if listing is not None:
            return iter(listing)
        return self.fetch_pages(path, params, context, read)

    def fetch_pages(
        self,
        path: str,
        params: dict[str, t.Any],
        context: Context | None,
        read: t.Callable[[bytes], dict] | None = None,
    ) -> t.Iterator[dict]:
        """Request a listing page by page; the next page is requested only once the previous
        one has been consumed, so memory stays at one page. `read` turns a response body into
        the page; by default this stream's records, shaped."""
        paginator = self.get_new_paginator(context)
        read = read or self.read_records

        def request_page(prepared: requests.PreparedRequest, context: Context | None) -> t.Any:
            return self._request_page(prepared, context, read)

        send = self.request_decorator(request_page)
        url = self.url_base + path
        while not paginator.finished:
            page_params = dict(params)
            if self.paginated:
                page_params["maxResults"] = MAX_RESULTS
                if paginator.current_value:
                    page_params["pageToken"] = paginator.current_value
            prepared = self.build_prepared_request(
                method="GET", url=url, params=page_params, headers=self.http_headers
            )
            response = send(prepared, context)
            # Advanced before the page is handed on: deciding where paging stops may shape the
            # page's records, which must not happen in two threads at once.
            paginator.advance(response)
            yield response.blogger_body

    def read_records(self, content: bytes) -> dict:
        """A response body with this stream's records shaped (one resource, or a listing)."""
        if self.records_key is None:
            return self._shaper.read_resource(content)
        return self._shaper.read_page(content)

    def listing(self, context: Context) -> tuple[str, dict[str, t.Any]]:
        """Path and query of this stream's listing for a context."""
        return self.get_url(context)[len(self.url_base) :], self.list_params(context)

    def request_records(self, context: Context | None) -> t.Iterable[dict]:
        for body in self.request_pages(*self.listing(context), context):
            yield from self.records_in(body)

    # Requests, retries and errors

    @property
    def requests_session(self) -> requests.Session:
        # One session (connection pool) per thread: prefetching workers never share one.
        session = getattr(self._sessions, "session", None)
        if session is None:
            session = self._sessions.session = requests.Session()
        return session

    def _request(
        self, prepared_request: requests.PreparedRequest, context: Context | None
    ) -> requests.Response:
        with self.tap.api_request(self.name):
            return super()._request(prepared_request, context)

    def _request_page(
        self,
        prepared_request: requests.PreparedRequest,
        context: Context | None,
        read: t.Callable[[bytes], dict],
    ) -> requests.Response:
        """One attempt: the request, its status checked, and its body read. A body that is
        not whole JSON counts as a failed attempt, like a 5xx."""
        response = self._request(prepared_request, context)
        try:
            response.blogger_body = read(response.content)  # type: ignore[attr-defined]
        except msgspec.DecodeError:
            raise RetriableAPIError(
                f"truncated or invalid JSON body ({len(response.content)} bytes)", response
            ) from None
        except NotAnObjectError:
            raise RetriableAPIError("JSON body is not an object", response) from None
        return response

    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        if status < 300:
            self.tap.rate_limiter.succeeded()
            return
        message, error = describe_failure(response, attempts=1)
        if status == 401 and self._may_refresh(response):
            raise TokenRejected(message, response)
        if status == 429 or (status == 403 and error.reason in RATE_LIMIT_REASONS):
            raise RateLimited(message, response)
        if status in RETRY_STATUSES:
            raise RetriableAPIError(message, response)
        raise BloggerAPIError(message, status=status, reason=error.reason)

    def _may_refresh(self, response: requests.Response) -> bool:
        """One refresh and retry per request after a 401, and only with a refresh token."""
        auth = self.authenticator
        request = response.request
        if not isinstance(auth, GoogleOAuthAuthenticator) or getattr(request, "reauthed", False):
            return False
        request.reauthed = True  # type: ignore[union-attr]
        header = request.headers.get("Authorization", "")
        auth.invalidate(header.removeprefix("Bearer ") or None)
        return True

    def backoff_max_tries(self) -> int:
        return MAX_ATTEMPTS

    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:
        """Exponential backoff with factor 2 from `retry_initial_delay`, or the API's
        Retry-After (capped), or no wait at all after a refreshed token."""
        initial = float(self.config["retry_initial_delay_seconds"])

        def waits() -> t.Generator[float, t.Any, None]:
            exc = yield  # type: ignore[misc]
            retry = 0
            while True:
                delay = initial * 2**retry
                if isinstance(exc, TokenRejected):
                    delay = 0.0
                elif (after := _retry_after(exc)) is not None:
                    delay = min(after, MAX_RETRY_AFTER_SECONDS)
                retry += 1
                exc = yield delay

        return waits()

    def backoff_jitter(self, value: float) -> float:
        return value * (1 + random.uniform(0, JITTER))

    def backoff_handler(self, details: Details) -> None:
        exc = details.get("exception")
        response = getattr(exc, "response", None)
        if response is not None:
            if isinstance(exc, RateLimited):
                self.tap.rate_limiter.rate_limited(details.get("wait", 0.0))
            cause = f"HTTP {response.status_code} ({GoogleError.from_response(response).reason})"
            if response.ok:
                cause = str(exc)
            endpoint = _endpoint(response.request)
        else:
            cause = type(exc).__name__
            endpoint = _endpoint(details["args"][0] if details.get("args") else None)
        self.logger.warning(
            "Attempt %d of %d failed for %s: %s; retrying in %.1f s.",
            details["tries"],
            MAX_ATTEMPTS,
            endpoint,
            cause,
            details.get("wait", 0.0),
        )

    def request_decorator(self, func: t.Callable) -> t.Callable:
        retrying = super().request_decorator(func)

        def request(prepared_request: requests.PreparedRequest, context: Context | None) -> t.Any:
            try:
                return retrying(prepared_request, context)
            except RetriableAPIError as exc:
                response = exc.response
                if isinstance(exc, TokenRejected) or response is None or not response.ok:
                    attempts = MAX_ATTEMPTS if not isinstance(exc, TokenRejected) else 2
                    if response is None:
                        raise BloggerAPIError(str(exc)) from None
                    message, error = describe_failure(response, attempts=attempts)
                    raise BloggerAPIError(
                        message, status=response.status_code, reason=error.reason
                    ) from None
                raise BloggerAPIError(
                    f"Blogger API sent a {exc} for {_endpoint(prepared_request)} "
                    f"{MAX_ATTEMPTS} times in a row. {_what_to_do(None, '')}"
                ) from None
            except (requests.RequestException, ConnectionResetError) as exc:
                kind = "timed out" if isinstance(exc, requests.Timeout) else "failed"
                raise BloggerAPIError(
                    f"Request to {_endpoint(prepared_request)} {kind} {MAX_ATTEMPTS} times "
                    f"({type(exc).__name__}; timeout {self.timeout:g} s, setting "
                    f"`request_timeout`). Check `api_url` and the network, then rerun; the "
                    "state of the last completed run is kept."
                ) from None

        return request

    # Records

    def records_in(self, body: dict) -> list:
        """The records of a body `read_records` made, shaped."""
        return [body] if self.records_key is None else self._shaper.records(body)

    def _write_schema_message(self) -> None:
        # The SDK sends a child stream's SCHEMA again for every parent context (each blog).
        # Targets need it once, and some drain their buffers on every SCHEMA they read.
        if not self._schema_written:
            super()._write_schema_message()
            self._schema_written = True

    @functools.cached_property
    def _drops_properties(self) -> bool:
        """Whether the catalog deselects any property of this stream."""
        return not all(selected for breadcrumb, selected in self.mask.items() if breadcrumb)

    def _generate_record_messages(self, record: dict) -> t.Iterator[RecordMessage]:
        # The SDK's version first walks every record, nested objects included, to drop
        # deselected properties: a tenth of a run's CPU when, as usually, none is. Without
        # any, the rest of it is what remains: TYPE_CONFORMANCE_LEVEL is NONE, so only the
        # stream maps apply.
        if self._drops_properties:
            yield from super()._generate_record_messages(record)
            return
        for stream_map in self.stream_maps:
            mapped = stream_map.transform(record)
            if mapped is not None:
                yield RecordMessage(
                    stream=stream_map.stream_alias,
                    record=mapped,
                    version=self._stream_version,
                    time_extracted=utc_now(),
                )


def _retry_after(exc: BaseException | None) -> float | None:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP-date; fall back to exponential backoff
