"""JSON schemas of the Blogger v3 resources, derived from Google's discovery document.

`blogger_v3_resources.json` is the `schemas` section of the discovery document for the five
resources the tap extracts. The discovery document describes the wire format, so two kinds of
field are declared differently from how they travel:

- int64 values travel as JSON strings (``"format": "int64"``); they are declared and emitted as
  integers.
- timestamps are untyped strings with local offsets (``-07:00``); they are declared
  ``format: date-time`` and emitted in UTC.

Every field is nullable because Google omits absent fields and occasionally sends null.
"""

from __future__ import annotations

import json
import typing as t
from functools import cache
from importlib import resources

# Discovery declares no date-time format; these are the timestamp fields of the five resources.
TIMESTAMP_FIELDS = frozenset({"published", "updated", "created", "trashed"})


@cache
def _discovery_schemas() -> dict[str, dict]:
    text = resources.files(__package__).joinpath("blogger_v3_resources.json").read_text("utf-8")
    return json.loads(text)["schemas"]


def _nullable(schema: dict) -> dict:
    schema["type"] = [schema["type"], "null"]
    return schema


def _convert(name: str, field: dict, seen: tuple[str, ...]) -> dict:
    if "$ref" in field:
        return _resource_schema(field["$ref"], seen)
    kind = field["type"]
    described = {"description": field["description"]} if "description" in field else {}
    if kind == "object":
        props = {k: _convert(k, v, seen) for k, v in field.get("properties", {}).items()}
        return {"type": ["object", "null"], "properties": props, **described}
    if kind == "array":
        return {"type": ["array", "null"], "items": _convert(name, field["items"], seen)}
    if kind == "string" and field.get("format") == "int64":
        return _nullable({"type": "integer", **described})
    if kind == "string" and name in TIMESTAMP_FIELDS:
        return _nullable({"type": "string", "format": "date-time", **described})
    return _nullable({"type": kind, **described})


def _resource_schema(resource: str, seen: tuple[str, ...] = ()) -> dict:
    if resource in seen:
        # A resource nested in itself (none today) would recurse forever; keep it opaque.
        return {"type": ["object", "null"]}
    source = _discovery_schemas()[resource]
    props = {k: _convert(k, v, (*seen, resource)) for k, v in source.get("properties", {}).items()}
    return {"type": ["object", "null"], "properties": props}


def stream_schema(resource: str, extra_ids: t.Sequence[str] = ()) -> dict:
    """Record schema of a stream holding `resource` records, plus top-level parent ids."""
    schema = _resource_schema(resource)
    schema["type"] = "object"
    for key in extra_ids:
        schema["properties"][key] = {"type": ["string", "null"]}
    schema["required"] = ["id"]
    return schema
