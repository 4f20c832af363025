"""The floor: the fewest requests and the least work a full extraction can do, sequentially.

Token request, users/self, users/self/blogs, then per blog 500-item pages of posts, pages and
blog-level comments. Each JSON body is parsed and each record written as a JSON line to
/dev/null, so the work per record is comparable to a tap's.

python -m bench.clients.floor CREDENTIALS_FILE
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import requests

PAGE_SIZE = 500


def access_token(session: requests.Session, creds: dict[str, Any]) -> str:
    reply = session.post(
        creds["token_url"],
        data={
            "grant_type": "refresh_token",
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
            "refresh_token": creds["refresh_token"],
        },
        timeout=60,
    )
    reply.raise_for_status()
    return reply.json()["access_token"]


def get(session: requests.Session, url: str, params: dict[str, Any] | None = None) -> Any:
    reply = session.get(url, params=params, timeout=60)
    reply.raise_for_status()
    return reply.json()


def listing(session: requests.Session, url: str) -> Iterator[dict[str, Any]]:
    params: dict[str, Any] = {"maxResults": PAGE_SIZE}
    while True:
        body = get(session, url, params)
        yield from body.get("items", ())
        if "nextPageToken" not in body:
            return
        params["pageToken"] = body["nextPageToken"]


def extract(session: requests.Session, api: str) -> Iterator[dict[str, Any]]:
    yield get(session, f"{api}/users/self")
    blogs = get(session, f"{api}/users/self/blogs").get("items", [])
    yield from blogs
    for blog in blogs:
        for stream in ("posts", "pages", "comments"):
            yield from listing(session, f"{api}/blogs/{blog['id']}/{stream}")


def write(records: Iterator[dict[str, Any]], sink: TextIO) -> int:
    count = 0
    for record in records:
        sink.write(json.dumps(record) + "\n")
        count += 1
    return count


def main(credentials_file: str) -> None:
    creds = json.loads(Path(credentials_file).read_text(encoding="utf-8"))
    with requests.Session() as session, open("/dev/null", "w", encoding="utf-8") as sink:
        session.headers["Authorization"] = f"Bearer {access_token(session, creds)}"
        count = write(extract(session, creds["api_url"]), sink)
    print(json.dumps({"records": count}))


if __name__ == "__main__":
    main(sys.argv[1])
