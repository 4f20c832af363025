"""HTTP side of the emulator: Blogger v3 read endpoints, OAuth2 endpoints, faults and statistics."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import socket
import struct
import sys
import threading
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from .data import (
    COMMENT_STATUSES,
    PAGE_STATUSES,
    POST_STATUSES,
    BlogAccess,
    Dataset,
    parse_timestamp,
)
from .faults import Fault, FaultInjector

ROUTES = (
    "token",
    "users.get",
    "blogs.listByUser",
    "blogs.get",
    "blogs.getByUrl",
    "posts.list",
    "posts.get",
    "pages.list",
    "comments.listByBlog",
    "comments.list",
    "authorize",
    "not_found",
)
API_ROUTES = frozenset(r for r in ROUTES if "." in r)
SCOPE_READONLY = "https://www.googleapis.com/auth/blogger.readonly"
JSON_TYPE = "application/json; charset=UTF-8"
HTML_TYPE = "text/html; charset=UTF-8"
MAX_RESULTS = 500
VIEWS = ("VIEW_TYPE_UNSPECIFIED", "READER", "AUTHOR", "ADMIN")
ORDERS = ("ORDER_BY_UNSPECIFIED", "PUBLISHED", "UPDATED")
NO_PERMISSION = "We're sorry, but you don't have permission to access this resource."

# Path patterns in match order: "byurl" must win over a blog id.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("users.get", r"/v3/users/([^/]+)"),
        ("blogs.listByUser", r"/v3/users/([^/]+)/blogs"),
        ("blogs.getByUrl", r"/v3/blogs/byurl"),
        ("blogs.get", r"/v3/blogs/([^/]+)"),
        ("posts.list", r"/v3/blogs/([^/]+)/posts"),
        ("posts.get", r"/v3/blogs/([^/]+)/posts/([^/]+)"),
        ("pages.list", r"/v3/blogs/([^/]+)/pages"),
        ("comments.listByBlog", r"/v3/blogs/([^/]+)/comments"),
        ("comments.list", r"/v3/blogs/([^/]+)/posts/([^/]+)/comments"),
    )
)

_GOOGLE_502 = (
    "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n"
    '  <meta name=viewport content="initial-scale=1, minimum-scale=1, width=device-width">\n'
    "  <title>Error 502 (Server Error)!!1</title>\n"
    "  <a href=//www.google.com/><span id=logo aria-label=Google></span></a>\n"
    "  <p><b>502.</b> <ins>That\u2019s an error.</ins>\n"
    "  <p>The server encountered a temporary error and could not complete your request."
    "<p>Please try again in 30 seconds.  <ins>That\u2019s all we know.</ins>\n"
)
_HTML_200 = (
    "<!DOCTYPE html>\n<html><head><title>Sign in - Google Accounts</title></head>\n"
    '<body><form action="https://accounts.google.com/signin">'
    '<input type="email" name="identifier"></form></body></html>\n'
)


class RequestLog(NamedTuple):
    method: str
    route: str
    path: str
    query: dict[str, list[str]]
    status: int  # 0 when the connection was dropped without a response
    auth: str  # "bearer", "key" or "none": what the request presented, valid or not


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: tuple[tuple[str, str], ...] = ()
    action: str | None = None  # "drop" or "truncate"


class _ApiError(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


_HTML_SAFE = tuple((char.encode(), f"\\u{ord(char):04x}".encode()) for char in "<>&='\u2028\u2029")


def encode_json(obj: Any) -> bytes:
    # Escape like Google's JSON writer (HTML-safe); parsed values are unchanged. Replacing in the
    # UTF-8 bytes is safe (no multi-byte sequence contains these bytes) and much faster than in str.
    data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    for raw, escaped in _HTML_SAFE:
        data = data.replace(raw, escaped)
    return data


def google_error(
    code: int,
    status: str,
    reason: str,
    message: str,
    *,
    domain: str = "global",
    location: str | None = None,
    location_type: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> Reply:
    detail: dict[str, str] = {"message": message, "domain": domain, "reason": reason}
    if location:
        detail["location"] = location
        detail["locationType"] = location_type or "parameter"
    body = {"error": {"code": code, "message": message, "errors": [detail], "status": status}}
    return Reply(code, encode_json(body), headers=headers)


def _bad_param(name: str, message: str, reason: str = "invalidParameter") -> _ApiError:
    return _ApiError(google_error(400, "INVALID_ARGUMENT", reason, message, location=name))


def _forbidden() -> _ApiError:
    return _ApiError(google_error(403, "PERMISSION_DENIED", "forbidden", NO_PERMISSION))


def _not_found() -> _ApiError:
    return _ApiError(google_error(404, "NOT_FOUND", "notFound", "Not Found"))


def _auth_error(message: str, detail: str, reason: str, www_authenticate: str) -> Reply:
    # Google's top-level message differs from the per-error one for authentication failures.
    body = {
        "error": {
            "code": 401,
            "message": message,
            "errors": [
                {
                    "message": detail,
                    "domain": "global",
                    "reason": reason,
                    "location": "Authorization",
                    "locationType": "header",
                }
            ],
            "status": "UNAUTHENTICATED",
        }
    }
    return Reply(401, encode_json(body), headers=(("WWW-Authenticate", www_authenticate),))


_INVALID_CREDENTIALS = _auth_error(
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
    "or other valid authentication credential.",
    "Invalid Credentials",
    "authError",
    'Bearer realm="https://accounts.google.com/", error="invalid_token"',
)
_LOGIN_REQUIRED = _auth_error(
    "Request is missing required authentication credential. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential.",
    "Login Required.",
    "required",
    'Bearer realm="https://accounts.google.com/"',
)
_JSON_FAULTS = {
    "500": (500, "INTERNAL", "backendError", "Internal error encountered.", "global"),
    "503": (503, "UNAVAILABLE", "backendError", "The service is currently unavailable.", "global"),
    "504": (
        504,
        "DEADLINE_EXCEEDED",
        "backendError",
        "Deadline expired before operation could complete.",
        "global",
    ),
    "403_rate": (
        403,
        "PERMISSION_DENIED",
        "rateLimitExceeded",
        "Rate Limit Exceeded",
        "usageLimits",
    ),
    "403_user_rate": (
        403,
        "PERMISSION_DENIED",
        "userRateLimitExceeded",
        "User Rate Limit Exceeded",
        "usageLimits",
    ),
    "403_daily": (
        403,
        "PERMISSION_DENIED",
        "dailyLimitExceeded",
        "Daily Limit Exceeded",
        "usageLimits",
    ),
    "400": (400, "INVALID_ARGUMENT", "badRequest", "Bad Request", "global"),
    "404": (404, "NOT_FOUND", "notFound", "Not Found", "global"),
}


def _fault_reply(fault: Fault) -> Reply:
    """The reply replacing the real one; "slow" and "truncate" are applied around the real one."""
    kind = fault.kind
    if kind in _JSON_FAULTS:
        code, status, reason, message, domain = _JSON_FAULTS[kind]
        return google_error(code, status, reason, message, domain=domain)
    if kind == "429":
        headers = () if fault.retry_after is None else (("Retry-After", f"{fault.retry_after:g}"),)
        return google_error(
            429,
            "RESOURCE_EXHAUSTED",
            "rateLimitExceeded",
            "Resource has been exhausted (e.g. check quota).",
            headers=headers,
        )
    if kind == "502":
        return Reply(502, _GOOGLE_502.encode(), HTML_TYPE)
    if kind == "401":
        return _INVALID_CREDENTIALS
    if kind == "html200":
        return Reply(200, _HTML_200.encode(), HTML_TYPE)
    if kind == "drop":
        return Reply(0, action="drop")
    raise ValueError(f"fault {kind!r} has no reply of its own")


def _oauth_error(status: int, error: str, description: str) -> Reply:
    return Reply(
        status,
        json.dumps({"error": error, "error_description": description}, indent=2).encode(),
        "application/json; charset=utf-8",
        (
            ("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate"),
            ("Pragma", "no-cache"),
        ),
    )


def _html_error(status: int, text: str) -> Reply:
    body = (
        f"<!DOCTYPE html><html><head><title>Error</title></head><body><p>{text}</p></body></html>"
    )
    return Reply(status, body.encode(), HTML_TYPE)


class _Request(NamedTuple):
    method: str
    route: str
    args: tuple[str, ...]
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    @property
    def bearer(self) -> str | None:
        value = self.headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None

    @property
    def api_key(self) -> str | None:
        return self.param("key") or self.headers.get("x-goog-api-key")

    @property
    def auth(self) -> str:
        if self.bearer is not None:
            return "bearer"
        return "key" if self.api_key else "none"


@dataclass
class _Grant:
    redirect_uri: str
    scope: str
    challenge: str | None
    method: str
    expires: float


@dataclass
class _Bucket:
    """Token bucket with burst = rate."""

    rate: float
    tokens: float = field(init=False)
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = self.rate

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class _CalendarSeconds:
    """At most `rate` requests per wall-clock second (a counter reset on each new second)."""

    rate: float
    second: int = -1
    count: int = 0

    def take(self) -> bool:
        now = int(time.time())
        if now != self.second:
            self.second, self.count = now, 0
        self.count += 1
        return self.count <= self.rate


@dataclass
class _SlidingSecond:
    """At most `rate` requests in any one-second window."""

    rate: float
    times: deque[float] = field(default_factory=deque)

    def take(self) -> bool:
        now = time.monotonic()
        while self.times and self.times[0] <= now - 1:
            self.times.popleft()
        if len(self.times) < self.rate:
            self.times.append(now)
            return True
        return False


# How `rate_limit_rps` counts requests. Google does not say how it counts per-second use, so a
# client has to stay within each of these.
RATE_LIMITERS: dict[str, Callable[[float], Any]] = {
    "bucket": _Bucket,
    "calendar": _CalendarSeconds,
    "sliding": _SlidingSecond,
}


def _resolve(method: str, path: str) -> tuple[str, tuple[str, ...]]:
    if path == "/token":
        return ("token", ()) if method == "POST" else ("not_found", ())
    if path in ("/o/oauth2/auth", "/o/oauth2/v2/auth"):
        return ("authorize", ()) if method == "GET" else ("not_found", ())
    if method == "GET":
        for name, pattern in _PATTERNS:
            m = pattern.fullmatch(path)
            if m:
                return name, tuple(unquote(g) for g in m.groups())
    return "not_found", ()


class BloggerEmulator:
    """A Blogger v3 + OAuth2 server on 127.0.0.1 serving `dataset`; starts on construction.

    Page tokens are HMAC-signed cursors (sort value and id of the last item) bound to the query,
    so inserting records between page requests does not shift later pages, while a record whose
    sort value moves behind the cursor during a pagination is not seen by it.
    """

    def __init__(
        self,
        dataset: Dataset | str = "tiny",
        *,
        latency_ms: float = 0,
        rate_limit_rps: float | None = None,
        rate_limit_window: str = "bucket",
        token_ttl_s: float = 3600,
        host: str = "127.0.0.1",
        port: int = 0,
        verbose: bool = False,
        expose_credentials: bool = False,
    ) -> None:
        self.dataset = Dataset.named(dataset) if isinstance(dataset, str) else dataset
        self.latency_ms = latency_ms
        self.token_ttl_s = token_ttl_s
        self.verbose = verbose
        self.expose_credentials = expose_credentials
        project_number = secrets.randbelow(9 * 10**11) + 10**11
        self.client_id = f"{project_number}-{secrets.token_hex(16)}.apps.googleusercontent.com"
        self.client_secret = "GOCSPX-" + secrets.token_urlsafe(21)
        self.refresh_token = "1//0" + secrets.token_urlsafe(75)
        self.api_key = "AIzaSy" + secrets.token_urlsafe(25)[:33]
        self.faults = FaultInjector()
        self.counts: Counter[str] = Counter()
        self.requests: list[RequestLog] = []
        self.rate_limited = 0
        self.issued_access_tokens: list[str] = []
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}  # access token -> monotonic expiry
        self._codes: dict[str, _Grant] = {}
        self._scope = SCOPE_READONLY
        self._refresh_revoked = False
        self._client_deleted = False
        self._page_key = secrets.token_bytes(32)
        self._rate_limit = (
            RATE_LIMITERS[rate_limit_window](rate_limit_rps) if rate_limit_rps else None
        )
        self._handlers: dict[str, Callable[[_Request], Reply]] = {
            "token": self._token,
            "authorize": self._authorize,
            "users.get": self._users_get,
            "blogs.listByUser": self._blogs_list_by_user,
            "blogs.get": self._blogs_get,
            "blogs.getByUrl": self._blogs_get_by_url,
            "posts.list": self._posts_list,
            "posts.get": self._posts_get,
            "pages.list": self._pages_list,
            "comments.listByBlog": self._comments_list_by_blog,
            "comments.list": self._comments_list,
            "not_found": lambda req: _not_found().reply,
        }
        self._server = _Server((host, port), _Handler, self)
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"blogger-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()

    # ---- lifecycle and public helpers ---------------------------------------------------------

    def __enter__(self) -> BloggerEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving and cut open keep-alive connections; idempotent."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
        self._server.close_connections()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/v3"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    @property
    def auth_url(self) -> str:
        return f"{self.base_url}/o/oauth2/auth"

    def oauth_config(self) -> dict[str, str]:
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
            "api_url": self.api_url,
            "token_url": self.token_url,
        }

    def api_key_config(self) -> dict[str, Any]:
        return {
            "api_key": self.api_key,
            "api_url": self.api_url,
            "token_url": self.token_url,
            "blog_ids": self.dataset.public_blog_ids(),
        }

    def reset_counts(self) -> None:
        with self._lock:
            self.counts.clear()
            self.requests.clear()
            self.rate_limited = 0

    def issue_access_token(self) -> str:
        """A valid bearer token without a token request (not counted)."""
        token = "ya29.a0" + secrets.token_urlsafe(120)
        with self._lock:
            self._tokens[token] = time.monotonic() + self.token_ttl_s
            self.issued_access_tokens.append(token)
        return token

    def revoke_refresh_token(self) -> None:
        """Refreshing fails with invalid_grant until a new authorization-code exchange."""
        with self._lock:
            self._refresh_revoked = True

    def delete_client(self) -> None:
        with self._lock:
            self._client_deleted = True

    def expire_all_tokens(self) -> None:
        with self._lock:
            for token in self._tokens:
                self._tokens[token] = 0.0

    # ---- request pipeline ---------------------------------------------------------------------

    def _handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Reply:
        split = urlsplit(raw_path)
        path = split.path
        query = parse_qs(split.query, keep_blank_values=True)
        if path.startswith("/_emulator/"):
            return self._control(method, path)
        route, args = _resolve(method, path)
        req = _Request(method, route, args, path, query, headers, body)
        reply = self._dispatch(req)
        with self._lock:
            self.counts[route] += 1
            self.requests.append(RequestLog(method, route, path, query, reply.status, req.auth))
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        return reply

    def _dispatch(self, req: _Request) -> Reply:
        is_api = req.route in API_ROUTES
        if is_api and self._rate_limit is not None:
            with self._lock:
                allowed = self._rate_limit.take()
                self.rate_limited += not allowed
            if not allowed:
                return _fault_reply(Fault("429", retry_after=1))
        key = f"{req.method} {req.path}?{sorted((k, v) for k, vs in req.query.items() for v in vs)}"
        # Rules match on path and query, so a fault can target e.g. requests with a pageToken.
        target = f"{req.path}?{urlencode(sorted(req.query.items()), doseq=True)}"
        fault = self.faults.pick(req.route, key, target, is_api)
        if fault is not None and fault.kind not in ("slow", "truncate", "repeat_token"):
            return _fault_reply(fault)
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay_s)
        try:
            reply = self._handlers[req.route](req)
        except _ApiError as err:
            reply = err.reply
        except Exception:  # an emulator bug: answer like Google would, keep the traceback
            traceback.print_exc()
            reply = _fault_reply(Fault("500"))
        if fault is not None and fault.kind == "truncate":
            reply = replace(reply, action="truncate")
        if fault is not None and fault.kind == "repeat_token" and req.param("pageToken"):
            # A broken cursor: the next page is announced with the token just used.
            body = json.loads(reply.body)
            body["nextPageToken"] = req.param("pageToken")
            reply = replace(reply, body=json.dumps(body).encode())
        return reply

    def _control(self, method: str, path: str) -> Reply:
        if method == "GET" and path == "/_emulator/stats":
            with self._lock:
                stats = {
                    "counts": dict(self.counts),
                    "requests": len(self.requests),
                    "rate_limited": self.rate_limited,
                }
            return Reply(200, encode_json(stats))
        if method == "POST" and path == "/_emulator/reset":
            self.reset_counts()
            return Reply(200, encode_json({"ok": True}))
        if method == "GET" and path == "/_emulator/credentials" and self.expose_credentials:
            return Reply(200, encode_json(self.oauth_config()))
        return _not_found().reply

    # ---- authentication and access ------------------------------------------------------------

    def _caller(self, req: _Request) -> str:
        """Return "owner" for a valid bearer token, "key" for the valid API key; else raise."""
        if req.headers.get("authorization"):
            token = req.bearer
            with self._lock:
                expiry = self._tokens.get(token or "")
            if expiry is None or expiry <= time.monotonic():
                raise _ApiError(_INVALID_CREDENTIALS)
            return "owner"
        key = req.api_key
        if key:
            if not hmac.compare_digest(key, self.api_key):
                raise _ApiError(
                    google_error(
                        400,
                        "INVALID_ARGUMENT",
                        "badRequest",
                        "API key not valid. Please pass a valid API key.",
                    )
                )
            return "key"
        raise _ApiError(_LOGIN_REQUIRED)

    def _blog(self, caller: str, blog_id: str) -> BlogAccess:
        access = self.dataset.access(blog_id)
        if access is None:
            raise _not_found()
        if not access.public and not (caller == "owner" and access.owned):
            raise _forbidden()
        return access

    def _admin_view(self, req: _Request, caller: str, access: BlogAccess) -> bool:
        """Whether view=ADMIN/AUTHOR was asked for; only the blog's owner may."""
        view = _enum(req, "view", VIEWS, "VIEW_TYPE_UNSPECIFIED")
        admin = view in ("ADMIN", "AUTHOR")
        if admin and not (caller == "owner" and access.owned):
            raise _forbidden()
        return admin

    # ---- Blogger endpoints --------------------------------------------------------------------

    def _users_get(self, req: _Request) -> Reply:
        if self._caller(req) != "owner":
            raise _ApiError(_LOGIN_REQUIRED)
        if req.args[0] not in ("self", self.dataset.user_id):
            raise _not_found()
        return Reply(200, encode_json(self.dataset.user))

    def _blogs_list_by_user(self, req: _Request) -> Reply:
        if self._caller(req) != "owner":
            raise _ApiError(_LOGIN_REQUIRED)
        if req.args[0] not in ("self", self.dataset.user_id):
            raise _forbidden()
        _enum(req, "view", VIEWS, "VIEW_TYPE_UNSPECIFIED")
        statuses = _statuses(req, ("LIVE", "DELETED"))
        with self.dataset.lock:
            blogs = (
                [self.dataset.blog(i) for i in self.dataset.owned_blog_ids()]
                if "LIVE" in statuses
                else []
            )
        out: dict[str, Any] = {"kind": "blogger#blogList"}
        if blogs:
            out["items"] = blogs
        return Reply(200, encode_json(out))

    def _blogs_get(self, req: _Request) -> Reply:
        caller = self._caller(req)
        access = self._blog(caller, req.args[0])
        self._admin_view(req, caller, access)
        return Reply(200, encode_json(self.dataset.blog(req.args[0])))

    def _blogs_get_by_url(self, req: _Request) -> Reply:
        caller = self._caller(req)
        url = req.param("url")
        if not url:
            raise _bad_param("url", "Required parameter: url", reason="required")
        blog_id = self.dataset.blog_id_for_url(url)
        if blog_id is None:
            raise _not_found()
        access = self._blog(caller, blog_id)
        self._admin_view(req, caller, access)
        return Reply(200, encode_json(self.dataset.blog(blog_id)))

    def _posts_list(self, req: _Request) -> Reply:
        caller = self._caller(req)
        blog_id = req.args[0]
        access = self._blog(caller, blog_id)
        admin = self._admin_view(req, caller, access)
        statuses = _statuses(req, POST_STATUSES)
        if statuses != {"LIVE"} and not admin:
            raise _bad_param(
                "status",
                "Listing posts with a status other than LIVE requires view=ADMIN or view=AUTHOR.",
            )
        order = _enum(req, "orderBy", ORDERS, "PUBLISHED")
        order = "PUBLISHED" if order == "ORDER_BY_UNSPECIFIED" else order
        labels = frozenset(s.strip() for s in (req.param("labels") or "").split(",") if s.strip())
        filters = {
            "statuses": statuses,
            "order": order,
            "start_ms": _date(req, "startDate"),
            "end_ms": _date(req, "endDate"),
            "labels": labels or None,
        }
        return self._list_reply(
            req,
            "blogger#postList",
            blog_id,
            "posts",
            filters,
            body=_bool(req, "fetchBodies", True),
            images=_bool(req, "fetchImages", False),
        )

    def _posts_get(self, req: _Request) -> Reply:
        caller = self._caller(req)
        blog_id, post_id = req.args
        access = self._blog(caller, blog_id)
        admin = self._admin_view(req, caller, access)
        body, images = _bool(req, "fetchBody", True), _bool(req, "fetchImages", False)
        with self.dataset.lock:
            status = self.dataset.post_status(blog_id, post_id)
            if status is None or (status != "LIVE" and not admin):
                raise _not_found()
            post = self.dataset.get_post(blog_id, post_id, body, images)
        return Reply(200, encode_json(post))

    def _pages_list(self, req: _Request) -> Reply:
        caller = self._caller(req)
        blog_id = req.args[0]
        access = self._blog(caller, blog_id)
        admin = self._admin_view(req, caller, access)
        statuses = _statuses(req, PAGE_STATUSES)
        if statuses != {"LIVE"} and not admin:
            raise _bad_param(
                "status",
                "Listing pages with a status other than LIVE requires view=ADMIN or view=AUTHOR.",
            )
        return self._list_reply(
            req,
            "blogger#pageList",
            blog_id,
            "pages",
            {"statuses": statuses},
            body=_bool(req, "fetchBodies", True),
        )

    def _comments_list_by_blog(self, req: _Request) -> Reply:
        caller = self._caller(req)
        blog_id = req.args[0]
        access = self._blog(caller, blog_id)
        if caller != "owner" or not access.owned:
            raise _forbidden()
        filters = {
            "statuses": _statuses(req, COMMENT_STATUSES),
            "start_ms": _date(req, "startDate"),
            "end_ms": _date(req, "endDate"),
        }
        return self._list_reply(
            req,
            "blogger#commentList",
            blog_id,
            "comments",
            filters,
            body=_bool(req, "fetchBodies", True),
        )

    def _comments_list(self, req: _Request) -> Reply:
        caller = self._caller(req)
        blog_id, post_id = req.args
        access = self._blog(caller, blog_id)
        self._admin_view(req, caller, access)
        statuses = _statuses(req, COMMENT_STATUSES, single=True)
        if statuses != {"LIVE"} and not (caller == "owner" and access.owned):
            raise _forbidden()
        filters = {
            "statuses": statuses,
            "start_ms": _date(req, "startDate"),
            "end_ms": _date(req, "endDate"),
            "post_id": post_id,
        }
        status = self.dataset.post_status(blog_id, post_id)
        if status is None or (status != "LIVE" and not (caller == "owner" and access.owned)):
            raise _not_found()
        return self._list_reply(
            req,
            "blogger#commentList",
            blog_id,
            "comments",
            filters,
            body=_bool(req, "fetchBodies", True),
        )

    # ---- pagination ---------------------------------------------------------------------------

    def _list_reply(
        self,
        req: _Request,
        kind: str,
        blog_id: str,
        stream: str,
        filters: dict[str, Any],
        **render: bool,
    ) -> Reply:
        limit = _max_results(req)
        canonical = sorted(
            (k, tuple(sorted(v)) if isinstance(v, frozenset) else v) for k, v in filters.items()
        )
        binding = hashlib.sha256(repr((req.route, req.args, canonical)).encode()).digest()[:8]
        token = req.param("pageToken")
        after = self._decode_page_token(token, binding) if token else None
        with self.dataset.lock:
            items, cursor = self.dataset.list_page(
                blog_id, stream, after=after, limit=limit, **filters, **render
            )
            version = self.dataset.version(blog_id)
        out: dict[str, Any] = {"kind": kind}
        if cursor is not None:
            out["nextPageToken"] = self._encode_page_token(cursor, binding)
        if items:
            out["items"] = items
        tag = hashlib.sha1(repr((binding, version, token, limit, render)).encode()).digest()
        out["etag"] = '"' + base64.urlsafe_b64encode(tag).decode().rstrip("=") + '"'
        return Reply(200, encode_json(out))

    def _encode_page_token(self, cursor: tuple[int, int], binding: bytes) -> str:
        payload = struct.pack(">qq8s", cursor[0], cursor[1], binding)
        mac = hmac.new(self._page_key, payload, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(payload + mac).decode().rstrip("=")

    def _decode_page_token(self, token: str, binding: bytes) -> tuple[int, int]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except ValueError:
            raw = b""
        payload, mac = raw[:24], raw[24:]
        expected = hmac.new(self._page_key, payload, hashlib.sha256).digest()[:16]
        if len(raw) != 40 or not hmac.compare_digest(mac, expected):
            raise _bad_param("pageToken", "Invalid pageToken", reason="invalid")
        sort_value, key, bound = struct.unpack(">qq8s", payload)
        if bound != binding:
            raise _bad_param("pageToken", "Invalid pageToken", reason="invalid")
        return sort_value, key

    # ---- OAuth --------------------------------------------------------------------------------

    def _token_reply(self, refresh: bool) -> Reply:
        token = self.issue_access_token()
        ttl = self.token_ttl_s
        body: dict[str, Any] = {
            "access_token": token,
            "expires_in": int(ttl) if float(ttl).is_integer() else ttl,
            "scope": self._scope,
            "token_type": "Bearer",
        }
        if refresh:
            body["refresh_token"] = self.refresh_token
        return Reply(
            200,
            json.dumps(body, indent=2).encode(),
            "application/json; charset=utf-8",
            (
                ("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate"),
                ("Pragma", "no-cache"),
            ),
        )

    def _token(self, req: _Request) -> Reply:
        form = parse_qs(req.body.decode("utf-8", "replace"), keep_blank_values=True)

        def field_(name: str) -> str | None:
            values = form.get(name)
            return values[0] if values else None

        client_id, client_secret = field_("client_id"), field_("client_secret")
        scheme, _, credentials = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":  # client_secret_basic
            try:
                decoded = base64.b64decode(credentials).decode()
            except ValueError:
                decoded = ""
            user, _, password = decoded.partition(":")
            client_id, client_secret = unquote(user), unquote(password)
        if not client_id:
            return _oauth_error(
                400, "invalid_request", "Could not determine client ID from request."
            )
        with self._lock:
            deleted, revoked = self._client_deleted, self._refresh_revoked
        if deleted or client_id != self.client_id:
            return _oauth_error(401, "invalid_client", "The OAuth client was not found.")
        if client_secret != self.client_secret:
            return _oauth_error(401, "invalid_client", "Unauthorized")
        grant_type = field_("grant_type")
        if grant_type == "refresh_token":
            refresh_token = field_("refresh_token")
            if not refresh_token:
                return _oauth_error(
                    400, "invalid_request", "Missing required parameter: refresh_token"
                )
            if refresh_token != self.refresh_token:
                return _oauth_error(400, "invalid_grant", "Bad Request")
            if revoked:
                return _oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
            return self._token_reply(refresh=False)
        if grant_type == "authorization_code":
            return self._exchange_code(
                field_("code"), field_("redirect_uri"), field_("code_verifier")
            )
        if not grant_type:
            return _oauth_error(400, "invalid_request", "Missing required parameter: grant_type")
        return _oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")

    def _exchange_code(
        self, code: str | None, redirect_uri: str | None, verifier: str | None
    ) -> Reply:
        if not code:
            return _oauth_error(400, "invalid_request", "Missing required parameter: code")
        with self._lock:
            grant = self._codes.pop(code, None)  # one attempt per code, like Google
        if grant is None or grant.expires < time.monotonic():
            return _oauth_error(400, "invalid_grant", "Malformed auth code.")
        if redirect_uri != grant.redirect_uri:
            return _oauth_error(400, "redirect_uri_mismatch", "Bad Request")
        if grant.challenge is not None:
            if not verifier:
                return _oauth_error(400, "invalid_grant", "Missing code verifier.")
            computed = verifier
            if grant.method == "S256":
                digest = hashlib.sha256(verifier.encode()).digest()
                computed = base64.urlsafe_b64encode(digest).decode().rstrip("=")
            if not hmac.compare_digest(computed, grant.challenge):
                return _oauth_error(400, "invalid_grant", "Invalid code verifier.")
        with self._lock:
            self._scope = grant.scope
            if self._refresh_revoked:  # consenting again yields a fresh, valid refresh token
                self.refresh_token = "1//0" + secrets.token_urlsafe(75)
                self._refresh_revoked = False
        return self._token_reply(refresh=True)

    def _authorize(self, req: _Request) -> Reply:
        client_id = req.param("client_id")
        redirect_uri = req.param("redirect_uri") or ""
        with self._lock:
            deleted = self._client_deleted
        if deleted or client_id != self.client_id:
            return _html_error(
                401, "Access blocked: Authorization Error. Error 401: invalid_client"
            )
        target = urlsplit(redirect_uri)
        if target.scheme != "http" or target.hostname not in ("127.0.0.1", "localhost", "::1"):
            return _html_error(400, "Access blocked: Error 400: redirect_uri_mismatch")
        scope = req.param("scope")
        method = req.param("code_challenge_method") or "plain"
        challenge = req.param("code_challenge")
        if not scope or method not in ("plain", "S256"):
            return _html_error(400, "Access blocked: Error 400: invalid_request")
        params: dict[str, str] = {}
        if req.param("response_type") != "code":
            params["error"] = "unsupported_response_type"
        else:
            code = "4/0A" + secrets.token_urlsafe(60)
            with self._lock:
                self._codes[code] = _Grant(
                    redirect_uri, scope, challenge, method, time.monotonic() + 600
                )
            params.update(code=code, scope=scope)
        state = req.param("state")
        if state is not None:
            params["state"] = state
        location = redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(params)
        return Reply(302, b"", HTML_TYPE, (("Location", location),))


# ---- parameter parsing --------------------------------------------------------------------------


def _invalid_value(name: str, raw: str, allowed: tuple[str, ...]) -> _ApiError:
    choices = ", ".join(a.lower() for a in allowed)
    return _bad_param(name, f"Invalid string value: '{raw}'. Allowed values: [{choices}]")


def _enum(req: _Request, name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = req.param(name)
    if raw is None:
        return default
    if raw.upper() not in allowed:
        raise _invalid_value(name, raw, allowed)
    return raw.upper()


def _statuses(req: _Request, allowed: tuple[str, ...], single: bool = False) -> frozenset[str]:
    values = req.query.get("status") or ["LIVE"]
    if single:
        values = values[:1]
    for raw in values:
        if raw.upper() not in allowed:
            raise _invalid_value("status", raw, allowed)
    return frozenset(v.upper() for v in values)


def _bool(req: _Request, name: str, default: bool) -> bool:
    raw = req.param(name)
    if raw is None:
        return default
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise _bad_param(name, f"Invalid boolean value: '{raw}'.")


def _max_results(req: _Request) -> int:
    raw = req.param("maxResults")
    if raw is None:
        return 10
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_RESULTS:
        raise _bad_param(
            "maxResults",
            f"Invalid value '{raw}'. Values must be within the range: [1, {MAX_RESULTS}]",
        )
    return int(raw)


def _date(req: _Request, name: str) -> int | None:
    raw = req.param(name)
    if raw is None:
        return None
    try:
        return parse_timestamp(raw)
    except ValueError:
        raise _bad_param(
            name, f"Invalid value for {name}: '{raw}' is not an RFC 3339 date-time."
        ) from None


# ---- HTTP plumbing ------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        emulator: BloggerEmulator,
    ) -> None:
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.discard(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    timeout = 120  # idle keep-alive connections are closed after this
    server: _Server

    def version_string(self) -> str:
        return "ESF"  # what Google's front end calls itself

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.server.emulator._handle(method, self.path, headers, body)
        if reply.action == "drop":
            self.close_connection = True
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Vary", "Origin, X-Origin, Referer")
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        if reply.action == "truncate":
            self.wfile.write(reply.body[: len(reply.body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.emulator.verbose:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")
