"""Turn Blogger's wire format into records that match the declared schemas.

One walk per record does the conversions the schemas promise (string int64 -> integer, local
timestamps -> UTC) and checks every present field against its declared type, so a record either
leaves the tap valid or the run stops with a message that names the record and the field.
"""

from __future__ import annotations

import datetime as dt
import re
import typing as t

from tap_blogger.errors import BadRecordError

UTC = dt.timezone.utc

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))"
)


def _looks_rfc3339(value: str) -> bool:
    """Date and time with seconds at RFC 3339's fixed positions: fromisoformat alone would also
    take ISO 8601 forms RFC 3339 does not allow (week dates, no seconds, no separators)."""
    return (
        len(value) >= 20  # the shortest: YYYY-MM-DDTHH:MM:SSZ
        and value[4] == value[7] == "-"
        and value[10] in "Tt "
        and value[13] == value[16] == ":"
    )


def parse_timestamp(value: str) -> dt.datetime:
    """Parse an RFC 3339 timestamp with a required offset; raise ValueError otherwise."""
    if _looks_rfc3339(value):  # C fast path for what Google sends
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    match = _RFC3339.fullmatch(value.strip())
    if not match:
        raise ValueError(value)
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    offset = dt.timedelta(0)
    if not zulu:
        offset = dt.timedelta(hours=int(off_h), minutes=int(off_m))
        if sign == "-":
            offset = -offset
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    return dt.datetime(
        int(year),
        int(month),
        int(day),
        int(hour),
        int(minute),
        int(second),
        micro,
        tzinfo=dt.timezone(offset),
    )


def format_utc(moment: dt.datetime) -> str:
    """The one timestamp format the tap emits: fixed width UTC, so bookmarks sort as strings."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def to_utc(value: str) -> str:
    return format_utc(parse_timestamp(value))


def build_field_plan(schema: dict) -> dict[str, t.Any]:
    """Map each declared property to (kind, nested plan) for the walk in `RecordShaper`."""
    plan: dict[str, t.Any] = {}
    for key, field in schema.get("properties", {}).items():
        plan[key] = _field_kind(field)
    return plan


def _field_kind(field: dict) -> tuple[str, t.Any]:
    types = field.get("type", [])
    types = [types] if isinstance(types, str) else types
    if field.get("format") == "date-time":
        return ("datetime", None)
    if "object" in types:
        return ("object", build_field_plan(field))
    if "array" in types:
        return ("array", _field_kind(field.get("items", {})))
    for kind in ("integer", "number", "boolean", "string"):
        if kind in types:
            return (kind, None)
    return ("any", None)


class RecordShaper:
    """Converts and checks records of one stream against that stream's schema."""

    def __init__(self, stream_name: str, schema: dict, logger: t.Any) -> None:
        self.stream_name = stream_name
        self.plan = build_field_plan(schema)
        self.logger = logger
        self._warned_unknown: set[str] = set()

    def shape(self, record: dict) -> dict:
        if not isinstance(record, dict):
            raise BadRecordError(
                f"Stream '{self.stream_name}': the API returned an item that is not an object "
                f"({type(record).__name__}); the response does not match Blogger v3."
            )
        for key in [k for k in record if k not in self.plan]:
            # Top-level columns come from the schema; an undeclared one is dropped, said once.
            if key not in self._warned_unknown:
                self._warned_unknown.add(key)
                self.logger.warning(
                    "Stream '%s': dropping field '%s' that Blogger v3 does not document.",
                    self.stream_name,
                    key,
                )
            del record[key]
        self._walk(record, self.plan, record)
        if not record.get("id"):
            raise BadRecordError(
                f"Stream '{self.stream_name}': the API returned a record without an 'id' "
                f"(fields: {sorted(record)[:12]}); refusing to emit a record without its key."
            )
        return record

    def _walk(self, obj: dict, plan: dict, root: dict, prefix: str = "") -> None:
        for key, value in obj.items():
            spec = plan.get(key)
            # Nested fields Google adds later land as-is inside JSON objects. Most fields are
            # plain strings: checked here without a call, since this runs for every field.
            if spec is None or value is None or (spec[0] == "string" and type(value) is str):
                continue
            obj[key] = self._value(value, spec, root, prefix + key)

    def _value(self, value: t.Any, spec: tuple[str, t.Any], root: dict, path: str) -> t.Any:
        kind, nested = spec
        if value is None or kind == "any":
            return value
        if kind == "string":
            if isinstance(value, str):
                return value
            if isinstance(value, (int, float)):
                return str(value)
        elif kind == "datetime":
            if isinstance(value, str):
                try:
                    return to_utc(value)
                except ValueError:
                    pass
        elif kind == "integer":
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                return int(value)
        elif kind == "number":
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return value
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    pass
        elif kind == "boolean":
            if isinstance(value, bool):
                return value
        elif kind == "object":
            if isinstance(value, dict):
                self._walk(value, nested, root, path + ".")
                return value
        elif kind == "array" and isinstance(value, list):
            return [self._value(item, nested, root, f"{path}[]") for item in value]
        raise BadRecordError(
            f"Stream '{self.stream_name}': record id={root.get('id')!r} has field '{path}' = "
            f"{_preview(value)}, which is not a valid {kind}. The API sent data that does not "
            "match Blogger v3; the run stops rather than emit or drop it."
        )


def _preview(value: t.Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
