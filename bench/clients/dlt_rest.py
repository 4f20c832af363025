"""dlt's rest_api source against the emulator, as the seed describes it or with the best plan.

python -m bench.clients.dlt_rest CREDENTIALS_FILE {seed,best} {extract,load} WORK_DIR

`extract` runs `pipeline.extract()` only; `load` runs extract, normalize and load into duckdb.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import dlt
from dlt.sources.rest_api import rest_api_source

PAGE_SIZE = 500


def client_config(creds: dict[str, Any]) -> dict[str, Any]:
    # The refresh-token grant through dlt's own OAuth2 class: its extra token-request fields
    # are merged last, so they replace the client-credentials grant_type. One token request.
    return {
        "base_url": creds["api_url"] + "/",
        "auth": {
            "type": "oauth2_client_credentials",
            "access_token_url": creds["token_url"],
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
            "access_token_request_data": {
                "grant_type": "refresh_token",
                "refresh_token": creds["refresh_token"],
            },
        },
    }


# Blogger's cursor: read `nextPageToken` from the body, send it back as `pageToken`.
CURSOR = {"type": "cursor", "cursor_path": "nextPageToken", "cursor_param": "pageToken"}


def seed_config(creds: dict[str, Any]) -> dict[str, Any]:
    """The seed's configuration with the fewest changes that make dlt run it to the end.

    Kept as written: resource names (`users` is the blog list, `blogs` the posts list), default
    page sizes (10 items), a detail request per post, comments per post, merge on `id`.
    Corrected:
    - auth `type: oauth2` does not exist in dlt: `oauth2_client_credentials` (see above);
    - base URL and `/v1/` paths: the emulator's `/v3` API;
    - `stop_condition` is no dlt paginator setting (rejected); the cursor paginator stops by
      itself when `nextPageToken` is missing;
    - `cursor_param: nextPageToken` alone reads the cursor from the default `cursors.next`,
      finds none and stops after page 1: `cursor_path: nextPageToken`, `cursor_param: pageToken`;
    - `{blog_id}` / `{post_id}` are bound to nothing: dlt's `{resources.<parent>.<field>}`;
    - `data_selector: []` on the post detail: `$`, the whole body is the record.
    """
    return {
        "client": client_config(creds),
        "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
        "resources": [
            {
                "name": "users",
                "endpoint": {
                    "path": "users/self/blogs",
                    "data_selector": "items",
                    "paginator": CURSOR,
                },
            },
            {
                "name": "blogs",
                "endpoint": {
                    "path": "blogs/{resources.users.id}/posts",
                    "data_selector": "items",
                    "paginator": CURSOR,
                },
            },
            {
                "name": "posts",
                "endpoint": {
                    "path": "blogs/{resources.blogs.blog.id}/posts/{resources.blogs.id}",
                    "data_selector": "$",
                    "paginator": CURSOR,
                },
            },
            {
                "name": "pages",
                "endpoint": {
                    "path": "blogs/{resources.users.id}/pages",
                    "data_selector": "items",
                    "paginator": CURSOR,
                },
            },
            {
                "name": "comments",
                "endpoint": {
                    "path": "blogs/{resources.blogs.blog.id}/posts/{resources.blogs.id}/comments",
                    "data_selector": "items",
                    "paginator": CURSOR,
                },
            },
        ],
    }


def best_config(creds: dict[str, Any]) -> dict[str, Any]:
    """The floor's plan in dlt: 500-item pages, blog-level comments, no per-post requests."""

    def blog_listing(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "endpoint": {
                "path": f"blogs/{{resources.blogs.id}}/{name}",
                "params": {"maxResults": PAGE_SIZE},
                "data_selector": "items",
                "paginator": CURSOR,
            },
        }

    single = {"type": "single_page"}
    return {
        "client": client_config(creds),
        "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
        "resources": [
            {
                "name": "users",
                "endpoint": {"path": "users/self", "data_selector": "$", "paginator": single},
            },
            {
                "name": "blogs",
                "endpoint": {
                    "path": "users/self/blogs",
                    "data_selector": "items",
                    "paginator": single,
                },
            },
            blog_listing("posts"),
            blog_listing("pages"),
            blog_listing("comments"),
        ],
    }


CONFIGS = {"seed": seed_config, "best": best_config}


def extracted_records(info: Any) -> int:
    """Items the source's resources yielded (not dlt's own pipeline-state resource)."""
    return sum(
        metrics.items_count
        for step in info.metrics.values()
        for entry in step
        for name, metrics in entry["resource_metrics"].items()
        if not name.startswith("_dlt")
    )


def main(credentials_file: str, plan: str, mode: str, work_dir: str) -> None:
    creds = json.loads(Path(credentials_file).read_text(encoding="utf-8"))
    source = rest_api_source(CONFIGS[plan](creds))
    work = Path(work_dir)
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{plan}",
        pipelines_dir=str(work / "pipelines"),
        destination=dlt.destinations.duckdb(str(work / "bench.duckdb")),
        dataset_name="blogger",
    )
    info = pipeline.extract(source)
    records = extracted_records(info)
    if mode == "load":
        pipeline.normalize()
        pipeline.load()
    print(json.dumps({"records": records}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
