"""Self-tests of the Blogger emulator, with plain `requests`."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.blogger_emulator import BloggerEmulator, BlogSpec, Dataset

RFC3339_OFFSET = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?[+-]\d\d:\d\d")


@pytest.fixture
def emu():
    with BloggerEmulator(Dataset.named("tiny")) as server:
        yield server


@pytest.fixture
def api(emu):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {emu.issue_access_token()}"
    return session


def refresh(emu: BloggerEmulator, **overrides: str) -> requests.Response:
    form = {
        "grant_type": "refresh_token",
        "client_id": emu.client_id,
        "client_secret": emu.client_secret,
        "refresh_token": emu.refresh_token,
        **overrides,
    }
    return requests.post(emu.token_url, data=form, timeout=5)


def paginate(session: requests.Session, url: str, **params) -> tuple[list[dict], int]:
    items, token, calls = [], None, 0
    while True:
        page = session.get(
            url, params={**params, **({"pageToken": token} if token else {})}, timeout=10
        )
        page.raise_for_status()
        calls += 1
        body = page.json()
        items += body.get("items", [])
        token = body.get("nextPageToken")
        if not token:
            return items, calls


def error_reason(resp: requests.Response) -> str:
    return resp.json()["error"]["errors"][0]["reason"]


# ---- dataset ----------------------------------------------------------------------------------


def test_generation_is_deterministic_and_skewed():
    specs = [BlogSpec(posts=200, comments=500, pages=2)]
    first, second = Dataset.generate(specs, seed=5), Dataset.generate(specs, seed=5)
    assert first.truth("comments") == second.truth("comments")
    replies = [int(p["replies"]["totalItems"]) for p in first.truth("posts")]
    assert sum(replies) == 500
    assert 0.5 <= replies.count(0) / len(replies) <= 0.7
    assert max(replies) >= 40
    ids = [c["id"] for c in first.truth("comments")]
    assert len(ids) == len(set(ids)) and all(18 <= len(i) <= 19 and i.isdigit() for i in ids)


def test_tiny_shape():
    ds = Dataset.named("tiny")
    a, b = ds.blog_ids()
    every = {"post_statuses": ("LIVE", "DRAFT", "SCHEDULED", "SOFT_TRASHED")}
    statuses = [p["status"] for p in ds.truth("posts", blog_ids=[a], **every)]
    assert (statuses.count("LIVE"), statuses.count("DRAFT")) == (25, 2)
    assert (statuses.count("SCHEDULED"), statuses.count("SOFT_TRASHED")) == (1, 1)
    assert len(ds.truth("comments", blog_ids=[a])) == 40
    assert len(ds.truth("comments", blog_ids=[a], comment_statuses=("PENDING", "SPAM"))) == 3
    assert len(ds.truth("pages", blog_ids=[a], page_statuses=("LIVE", "DRAFT"))) == 4
    assert (len(ds.truth("posts", blog_ids=[b])), len(ds.truth("comments", blog_ids=[b]))) == (3, 2)
    bodies = "".join(p["content"] for p in ds.truth("posts"))
    assert "\u2028" in bodies and "<script>" in bodies and "\U0001f389" in bodies


# ---- listing and pagination -------------------------------------------------------------------


def test_default_page_size_and_full_pagination(emu, api):
    blog = emu.dataset.blog_ids()[0]
    first = api.get(f"{emu.api_url}/blogs/{blog}/posts").json()
    assert first["kind"] == "blogger#postList" and len(first["items"]) == 10
    assert "nextPageToken" in first and first["etag"].startswith('"')
    items, calls = paginate(api, f"{emu.api_url}/blogs/{blog}/posts", maxResults=7)
    assert items == emu.dataset.truth("posts", blog_ids=[blog])
    assert calls == 4 and emu.counts["posts.list"] == 5
    published = [datetime.fromisoformat(p["published"]) for p in items]
    assert published == sorted(published, reverse=True)


def test_max_results_cap_is_500():
    ds = Dataset.generate([BlogSpec(posts=1100)], seed=3)
    with BloggerEmulator(ds) as emu:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {emu.issue_access_token()}"
        url = f"{emu.api_url}/blogs/{ds.blog_ids()[0]}/posts"
        assert len(session.get(url, params={"maxResults": 500}).json()["items"]) == 500
        items, calls = paginate(session, url, maxResults=500, fetchBodies="false")
        assert (len(items), calls) == (1100, 3) and "content" not in items[0]
        for bad in ("501", "0", "ten"):
            resp = session.get(url, params={"maxResults": bad})
            assert resp.status_code == 400
            assert resp.json()["error"]["message"].startswith("Invalid value")
            assert resp.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_page_tokens_are_opaque_and_bound_to_the_query(emu, api):
    url = f"{emu.api_url}/blogs/{emu.dataset.blog_ids()[0]}/posts"
    token = api.get(url).json()["nextPageToken"]
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad in (flipped, "garbage", token + "xx"):
        resp = api.get(url, params={"pageToken": bad})
        assert resp.status_code == 400 and error_reason(resp) == "invalid"
        assert resp.json()["error"]["message"] == "Invalid pageToken"
    other_query = api.get(url, params={"pageToken": token, "orderBy": "UPDATED"})
    assert other_query.status_code == 400
    assert api.get(url, params={"pageToken": token, "maxResults": 3}).status_code == 200


def test_empty_list_omits_items_and_next_token():
    ds = Dataset.generate([BlogSpec(posts=0)], seed=1)
    with BloggerEmulator(ds) as emu:
        headers = {"Authorization": f"Bearer {emu.issue_access_token()}"}
        blog = ds.blog_ids()[0]
        for stream in ("posts", "pages", "comments"):
            body = requests.get(f"{emu.api_url}/blogs/{blog}/{stream}", headers=headers).json()
            assert "items" not in body and "nextPageToken" not in body and body["kind"]
        assert (
            requests.get(f"{emu.api_url}/blogs/{blog}", headers=headers).json()["posts"][
                "totalItems"
            ]
            == 0
        )


def test_wire_format(emu, api):
    blog_a, blog_b = emu.dataset.blog_ids()
    resp = api.get(f"{emu.api_url}/blogs/{blog_a}/posts", params={"maxResults": 500})
    assert resp.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert "\\u003cp\\u003e" in resp.text and "\\u2028" in resp.text  # Google's HTML-safe escaping
    posts = resp.json()["items"]
    assert all(isinstance(p["replies"]["totalItems"], str) for p in posts)
    assert all(RFC3339_OFFSET.fullmatch(p[k]) for p in posts for k in ("published", "updated"))
    offsets = {p["published"][-6:] for p in posts}
    assert {"-08:00", "-07:00"} <= offsets
    assert any("." not in p["published"] for p in posts) and all("." in p["updated"] for p in posts)
    assert any("labels" not in p for p in posts) and all(None not in p.values() for p in posts)
    assert not any("images" in p for p in posts)
    with_images = api.get(
        f"{emu.api_url}/blogs/{blog_a}/posts", params={"maxResults": 500, "fetchImages": "true"}
    )
    assert any("images" in p for p in with_images.json()["items"])
    one = api.get(
        f"{emu.api_url}/blogs/{blog_a}/posts/{posts[0]['id']}", params={"fetchBody": "false"}
    )
    assert one.json() == {k: v for k, v in posts[0].items() if k != "content"}
    blog = api.get(f"{emu.api_url}/blogs/{blog_b}").json()
    assert blog["posts"]["totalItems"] == 3 and blog["published"].endswith("+05:30")


def test_post_filters(emu, api):
    blog = emu.dataset.blog_ids()[0]
    url = f"{emu.api_url}/blogs/{blog}/posts"
    start, end = "2024-01-01T00:00:00Z", "2025-01-01T00:00:00-08:00"
    items, _ = paginate(api, url, startDate=start, endDate=end, maxResults=5)
    lo, hi = datetime(2024, 1, 1, tzinfo=timezone.utc), datetime.fromisoformat(end)
    every = emu.dataset.truth("posts", blog_ids=[blog])
    assert items == [p for p in every if lo <= datetime.fromisoformat(p["published"]) < hi]
    assert api.get(url, params={"startDate": "yesterday"}).status_code == 400
    by_updated = api.get(url, params={"orderBy": "updated", "maxResults": 500}).json()["items"]
    stamps = [datetime.fromisoformat(p["updated"]) for p in by_updated]
    assert stamps == sorted(stamps, reverse=True)
    tagged = api.get(url, params={"labels": "news,travel", "maxResults": 500}).json()["items"]
    assert tagged and all({"news", "travel"} & set(p["labels"]) for p in tagged)


def test_statuses_need_admin_view(emu, api):
    blog = emu.dataset.blog_ids()[0]
    url = f"{emu.api_url}/blogs/{blog}/posts"
    resp = api.get(url, params={"status": "draft"})
    assert resp.status_code == 400 and "view=ADMIN" in resp.json()["error"]["message"]
    drafts = api.get(
        url, params=[("status", "draft"), ("status", "SCHEDULED"), ("view", "ADMIN")]
    ).json()
    assert sorted(p["status"] for p in drafts["items"]) == ["DRAFT", "DRAFT", "SCHEDULED"]
    assert api.get(url, params={"status": "bogus", "view": "ADMIN"}).status_code == 400
    pages = api.get(
        f"{emu.api_url}/blogs/{blog}/pages", params={"status": "draft", "view": "admin"}
    )
    assert [p["status"] for p in pages.json()["items"]] == ["DRAFT"]


def test_comments_listings(emu, api):
    blog = emu.dataset.blog_ids()[0]
    items, _ = paginate(api, f"{emu.api_url}/blogs/{blog}/comments", maxResults=15)
    assert items == emu.dataset.truth("comments", blog_ids=[blog])
    flagged = api.get(
        f"{emu.api_url}/blogs/{blog}/comments", params=[("status", "pending"), ("status", "spam")]
    ).json()["items"]
    assert sorted(c["status"] for c in flagged) == ["PENDING", "PENDING", "SPAM"]
    post = max(
        emu.dataset.truth("posts", blog_ids=[blog]), key=lambda p: int(p["replies"]["totalItems"])
    )
    per_post, _ = paginate(
        api, f"{emu.api_url}/blogs/{blog}/posts/{post['id']}/comments", maxResults=3
    )
    assert len(per_post) == int(post["replies"]["totalItems"]) and any(
        "inReplyTo" in c for c in items
    )


def test_blog_lookup(emu, api):
    blog = emu.dataset.blog(emu.dataset.blog_ids()[0])
    host = blog["url"].split("//")[1].rstrip("/")
    for url in (blog["url"], f"http://{host}", f"https://{host}/"):
        assert api.get(f"{emu.api_url}/blogs/byurl", params={"url": url}).json()["id"] == blog["id"]
    assert (
        api.get(
            f"{emu.api_url}/blogs/byurl", params={"url": "https://nope.blogspot.com/"}
        ).status_code
        == 404
    )
    missing = api.get(f"{emu.api_url}/blogs/123")
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"
    listed = api.get(f"{emu.api_url}/users/self/blogs", params={"maxResults": 1}).json()
    assert [b["id"] for b in listed["items"]] == emu.dataset.blog_ids()
    assert api.get(f"{emu.api_url}/users/self").json()["id"] == emu.dataset.user_id
    assert api.get(f"{emu.api_url}/blogs/{blog['id']}/posts/404").status_code == 404


# ---- authentication ---------------------------------------------------------------------------


def test_api_key_access_rules():
    ds = Dataset.generate([BlogSpec(posts=3, comments=2), BlogSpec(posts=2, public=False)], seed=2)
    with BloggerEmulator(ds) as emu:
        public, private = ds.blog_ids()
        assert emu.api_key_config()["blog_ids"] == [public]
        key = {"key": emu.api_key}
        ok = requests.get(f"{emu.api_url}/blogs/{public}/posts", params=key)
        assert ok.status_code == 200 and len(ok.json()["items"]) == 3
        post = ok.json()["items"][0]["id"]
        per_post = requests.get(f"{emu.api_url}/blogs/{public}/posts/{post}/comments", params=key)
        assert per_post.status_code == 200
        by_header = requests.get(
            f"{emu.api_url}/blogs/{public}", headers={"X-Goog-Api-Key": emu.api_key}
        )
        assert by_header.status_code == 200
        denied = requests.get(f"{emu.api_url}/blogs/{public}/comments", params=key)
        assert denied.status_code == 403 and error_reason(denied) == "forbidden"
        assert denied.json()["error"]["message"].startswith("We're sorry")
        admin = requests.get(f"{emu.api_url}/blogs/{public}/posts", params={**key, "view": "ADMIN"})
        assert admin.status_code == 403
        assert requests.get(f"{emu.api_url}/blogs/{private}", params=key).status_code == 403
        me = requests.get(f"{emu.api_url}/users/self", params=key)
        assert me.status_code == 401 and me.json()["error"]["status"] == "UNAUTHENTICATED"
        assert requests.get(f"{emu.api_url}/users/self/blogs", params=key).status_code == 401
        assert (
            requests.get(f"{emu.api_url}/blogs/{public}", params={"key": "AIzaWrong"}).status_code
            == 400
        )
        assert requests.get(f"{emu.api_url}/blogs/{public}").status_code == 401
        assert [r.auth for r in emu.requests[:2]] == ["key", "key"]


def test_refresh_and_token_expiry():
    with BloggerEmulator(Dataset.named("tiny"), token_ttl_s=0.5) as emu:
        grant = refresh(emu).json()
        assert grant["expires_in"] == 0.5 and grant["token_type"] == "Bearer"
        assert grant["scope"].endswith("blogger.readonly") and "refresh_token" not in grant
        url, headers = (
            f"{emu.api_url}/users/self",
            {"Authorization": f"Bearer {grant['access_token']}"},
        )
        assert requests.get(url, headers=headers).status_code == 200
        time.sleep(0.6)
        expired = requests.get(url, headers=headers)
        assert expired.status_code == 401 and error_reason(expired) == "authError"
        assert expired.json()["error"]["message"].startswith("Request had invalid authentication")
        emu.token_ttl_s = 60
        fresh = {"Authorization": f"Bearer {refresh(emu).json()['access_token']}"}
        assert requests.get(url, headers=fresh).status_code == 200
        emu.expire_all_tokens()
        assert requests.get(url, headers=fresh).status_code == 401
        assert emu.issued_access_tokens == [grant["access_token"], fresh["Authorization"][7:]]
        assert emu.counts["token"] == 2


def test_token_endpoint_errors(emu):
    assert refresh(emu, client_secret="nope").status_code == 401
    bad = refresh(emu, refresh_token="1//0bogus")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    emu.revoke_refresh_token()
    revoked = refresh(emu)
    assert revoked.status_code == 400
    assert revoked.json() == {
        "error": "invalid_grant",
        "error_description": "Token has been expired or revoked.",
    }
    emu.delete_client()
    gone = refresh(emu)
    assert gone.status_code == 401
    assert gone.json() == {
        "error": "invalid_client",
        "error_description": "The OAuth client was not found.",
    }


def test_authorization_code_flow_with_pkce(emu):
    received: dict[str, list[str]] = {}

    class Receiver(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            received.update(parse_qs(urlsplit(self.path).query))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    receiver = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.handle_request, daemon=True).start()
    redirect_uri = f"http://127.0.0.1:{receiver.server_address[1]}/callback"
    verifier = "v" * 64
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    )
    params = {
        "client_id": emu.client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": "https://www.googleapis.com/auth/blogger.readonly",
        "state": "xyz",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "access_type": "offline",
        "prompt": "consent",
    }
    final = requests.get(emu.auth_url, params=params, timeout=5)
    receiver.server_close()
    assert final.text == "ok" and received["state"] == ["xyz"]
    code = received["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": emu.client_id,
        "client_secret": emu.client_secret,
        "code_verifier": verifier,
    }
    grant = requests.post(emu.token_url, data=form).json()
    assert grant["refresh_token"] == emu.refresh_token and grant["access_token"]
    reused = requests.post(emu.token_url, data=form)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"

    redirect = requests.get(emu.auth_url, params=params, allow_redirects=False)
    assert redirect.status_code == 302
    code = parse_qs(urlsplit(redirect.headers["Location"]).query)["code"][0]
    wrong = requests.post(emu.token_url, data={**form, "code": code, "code_verifier": "w" * 64})
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    remote = requests.get(
        emu.auth_url, params={**params, "redirect_uri": "https://evil.example/cb"}
    )
    assert remote.status_code == 400
    assert emu.counts["authorize"] == 3


# ---- faults -----------------------------------------------------------------------------------


def test_scripted_faults(emu, api):
    url = f"{emu.api_url}/blogs/{emu.dataset.blog_ids()[0]}/posts"
    emu.faults.add("429", route="posts.list", retry_after=7)
    emu.faults.add("502")
    emu.faults.add("403_user_rate", times=2)
    emu.faults.add("html200")
    first = api.get(url)
    assert first.status_code == 429 and first.headers["Retry-After"] == "7"
    assert first.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    second = api.get(url)
    assert second.status_code == 502 and "Error 502 (Server Error)!!1" in second.text
    for _ in range(2):
        assert error_reason(api.get(url)) == "userRateLimitExceeded"
    assert api.get(url).headers["Content-Type"].startswith("text/html")
    assert api.get(url).status_code == 200
    assert [kind for _, kind in emu.faults.injected] == [
        "429",
        "502",
        "403_user_rate",
        "403_user_rate",
        "html200",
    ]
    assert [r.status for r in emu.requests] == [429, 502, 403, 403, 200, 200]


def test_connection_faults(emu, api):
    url = f"{emu.api_url}/blogs/{emu.dataset.blog_ids()[0]}/posts"
    emu.faults.add("drop", path_contains="/posts")
    with pytest.raises(requests.ConnectionError):
        api.get(url)
    emu.faults.add("truncate")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        api.get(url)
    emu.faults.add("slow", delay_s=0.3)
    started = time.monotonic()
    assert api.get(url).status_code == 200 and time.monotonic() - started >= 0.3
    emu.faults.always("401", route="users.get")
    assert [api.get(f"{emu.api_url}/users/self").status_code for _ in range(3)] == [401] * 3
    emu.faults.clear()
    assert api.get(f"{emu.api_url}/users/self").status_code == 200
    assert refresh(emu).status_code == 200  # route=None never touches the token endpoint
    assert emu.counts["posts.list"] == 3 and emu.requests[0].status == 0


def test_storm_never_fails_more_than_twice_in_a_row(emu, api):
    emu.faults.storm(rate=0.8, max_consecutive=2, seed=3)
    url = f"{emu.api_url}/blogs/{emu.dataset.blog_ids()[0]}/posts"
    streak = longest = failures = 0
    for _ in range(60):
        try:
            ok = api.get(url, timeout=5).status_code == 200
        except requests.RequestException:
            ok = False
        streak = 0 if ok else streak + 1
        failures += not ok
        longest = max(longest, streak)
    assert longest == 2 and failures >= 30
    assert refresh(emu).status_code == 200
    kinds = {kind for _, kind in emu.faults.injected}
    assert {"drop", "truncate", "429"} <= kinds


def test_rate_limit():
    with BloggerEmulator(Dataset.named("tiny"), rate_limit_rps=5) as emu:
        headers = {"Authorization": f"Bearer {emu.issue_access_token()}"}
        session = requests.Session()
        codes = [
            session.get(f"{emu.api_url}/users/self", headers=headers).status_code for _ in range(12)
        ]
        assert codes[:5] == [200] * 5 and 429 in codes
        assert emu.rate_limited == codes.count(429)
        limited = next(r for r in emu.requests if r.status == 429)
        assert limited.route == "users.get"


# ---- mutations and control --------------------------------------------------------------------


def test_mutations_are_visible_and_consistent(emu, api):
    ds = emu.dataset
    blog = ds.blog_ids()[0]
    ds.clock = lambda: datetime(2026, 1, 5, 12, 0, 0, 250000, tzinfo=timezone.utc)
    post = ds.truth("posts", blog_ids=[blog])[-1]
    comment = ds.add_comment(blog, post["id"], content="hello")
    after = api.get(f"{emu.api_url}/blogs/{blog}/posts/{post['id']}").json()
    assert after["updated"] == post["updated"]
    assert int(after["replies"]["totalItems"]) == int(post["replies"]["totalItems"]) + 1
    assert comment["published"] == "2026-01-05T04:00:00.250-08:00"
    newest = api.get(f"{emu.api_url}/blogs/{blog}/comments", params={"maxResults": 1}).json()[
        "items"
    ][0]
    assert newest["id"] == comment["id"]
    ds.update_comment(blog, comment["id"], status="SPAM")
    assert ds.get_post(blog, post["id"])["replies"]["totalItems"] == post["replies"]["totalItems"]

    edited = ds.update_post(blog, post["id"], title="Edited")
    assert (
        edited["updated"] == "2026-01-05T04:00:00.250-08:00"
        and edited["published"] == post["published"]
    )
    by_updated = api.get(
        f"{emu.api_url}/blogs/{blog}/posts", params={"orderBy": "UPDATED", "maxResults": 1}
    )
    assert by_updated.json()["items"][0]["title"] == "Edited"

    draft = next(p for p in ds.truth("posts", blog_ids=[blog], post_statuses=("DRAFT",)))
    live = ds.publish_post(blog, draft["id"])
    assert live["status"] == "LIVE" and live["published"] == "2026-01-05T04:00:00-08:00"
    added = ds.add_post(blog, title="Brand new")
    ds.add_page(blog, title="About")
    assert api.get(f"{emu.api_url}/blogs/{blog}").json()["posts"]["totalItems"] == 27
    ds.delete_post(blog, added["id"])
    assert api.get(f"{emu.api_url}/blogs/{blog}/posts/{added['id']}").status_code == 404
    assert len(ds.truth("pages", blog_ids=[blog])) == 4


def test_cursor_tokens_do_not_shift_when_posts_are_added(emu, api):
    ds = emu.dataset
    blog = ds.blog_ids()[0]
    url = f"{emu.api_url}/blogs/{blog}/posts"
    expected = [p["id"] for p in ds.truth("posts", blog_ids=[blog])]
    first = api.get(url, params={"maxResults": 10}).json()
    ds.add_post(blog, title="Inserted meanwhile")
    rest, _ = paginate(api, url, maxResults=10, pageToken=first["nextPageToken"])
    assert [p["id"] for p in first["items"]] + [p["id"] for p in rest] == expected


def test_control_endpoints(emu, api):
    api.get(f"{emu.api_url}/users/self")
    api.get(f"{emu.base_url}/nowhere")
    stats = requests.get(f"{emu.base_url}/_emulator/stats").json()
    assert stats["counts"] == {"users.get": 1, "not_found": 1} and stats["requests"] == 2
    assert requests.post(f"{emu.base_url}/_emulator/reset").status_code == 200
    assert emu.requests == [] and not emu.counts
    assert requests.get(f"{emu.base_url}/_emulator/credentials").status_code == 404


def test_cli_serves_and_exits_cleanly(tmp_path: Path):
    creds_file = tmp_path / "creds.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.blogger_emulator",
            "--dataset",
            "tiny",
            "--port",
            "0",
            "--credentials-file",
            str(creds_file),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("blogger emulator listening on http://127.0.0.1:")
        creds = json.loads(creds_file.read_text())
        assert line.strip().endswith(f":{creds['port']}") and creds["blog_ids_public"]
        grant = requests.post(
            creds["token_url"],
            data={
                "grant_type": "refresh_token",
                "client_id": creds["client_id"],
                "client_secret": creds["client_secret"],
                "refresh_token": creds["refresh_token"],
            },
        ).json()
        me = requests.get(
            f"{creds['api_url']}/users/self",
            headers={"Authorization": f"Bearer {grant['access_token']}"},
        )
        assert me.status_code == 200
        base = creds["api_url"].removesuffix("/v3")
        assert requests.get(f"{base}/_emulator/credentials").json() == {
            k: creds[k]
            for k in ("client_id", "client_secret", "refresh_token", "api_url", "token_url")
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
