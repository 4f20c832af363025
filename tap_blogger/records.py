"""Turn Blogger's wire format into records that match the declared schemas.

The conversions the schemas promise (string int64 -> integer, local timestamps -> UTC) and a
check of every present field against its declared type, so a record either leaves the tap valid
or the run stops with a message that names the record and the field.

A response body is read in one of two ways with the same result. The fast one decodes it with
msgspec straight into typed structures (the wire types, strictly: every field checked in C) and
then converts only the few fields that need it. Anything that decoding refuses (an undocumented
field, a number where a string belongs) sends the body to the general walk, which converts what
can be converted, drops undocumented top-level fields with a warning and otherwise stops.
"""

from __future__ import annotations

import datetime as dt
import functools
import typing as t

import msgspec
from msgspec import UNSET, UnsetType

from tap_blogger.errors import BadRecordError

UTC = dt.timezone.utc

# RFC 3339 with its offset required, parsed in C; the typed decoding reads timestamps as these.
AwareDatetime = t.Annotated[dt.datetime, msgspec.Meta(tz=True)]


def parse_timestamp(value: str) -> dt.datetime:
    """Parse an RFC 3339 timestamp with a required offset; raise ValueError otherwise."""
    text = value.strip()
    try:
        return msgspec.convert(text, AwareDatetime)  # as the typed decoding reads it
    except msgspec.ValidationError:
        pass
    # Refused there but still one instant: an offset with seconds (local mean time before
    # time zones, as Python writes it) or a decimal comma.
    if _looks_rfc3339(text):
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    raise ValueError(value)


def _looks_rfc3339(value: str) -> bool:
    """Date and time with seconds at RFC 3339's fixed positions: fromisoformat alone would also
    take ISO 8601 forms RFC 3339 does not allow (week dates, no seconds, no separators)."""
    return (
        len(value) >= 20  # the shortest: YYYY-MM-DDTHH:MM:SSZ
        and value[4] == value[7] == "-"
        and value[10] in "Tt "
        and value[13] == value[16] == ":"
    )


def format_utc(moment: dt.datetime) -> str:
    """The one timestamp format the tap emits: fixed width UTC, so bookmarks sort as strings."""
    # What isoformat(timespec="microseconds") gives, in less time: this runs twice a record.
    utc = moment.replace(tzinfo=None) - moment.utcoffset()  # type: ignore[operator]
    return utc.isoformat() + ("+00:00" if utc.microsecond else ".000000+00:00")


def utc_text(moment: dt.datetime) -> str:
    """`format_utc` of a record's timestamp; ValueError for one no UTC datetime can hold."""
    try:
        return format_utc(moment)
    except OverflowError:  # e.g. year 1 at +01:00, which is before any UTC datetime
        raise ValueError(moment) from None


def to_utc(value: str) -> str:
    return utc_text(parse_timestamp(value))


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


_decode = msgspec.json.Decoder().decode
# Decoded records as dicts, their timestamps still datetimes for the conversion to UTC.
_builtins = functools.partial(msgspec.to_builtins, builtin_types=(dt.datetime,))
_DECODED = object()  # key of a page's decoded, not yet shaped records: no JSON key can equal it


class NotAnObjectError(ValueError):
    """A response body that is valid JSON but not an object."""


def read_body(content: bytes) -> dict:
    """A response body as it came, for listings whose items are not this stream's records."""
    body = _decode(content)
    if not isinstance(body, dict):
        raise NotAnObjectError(type(body).__name__)
    return body


class RecordShaper:
    """Converts and checks records of one stream against that stream's schema."""

    def __init__(
        self, stream_name: str, schema: dict, logger: t.Any, records_key: str | None = "items"
    ) -> None:
        self.stream_name = stream_name
        self.plan = build_field_plan(schema)
        self.logger = logger
        # Where a listing's body holds its records; a single resource (None) has no listing.
        self.records_key = records_key or "items"
        self._warned_unknown: set[str] = set()
        record_type = _wire_type(self.plan, stream_name)
        self._read_record = msgspec.json.Decoder(record_type).decode
        self._read_list = msgspec.json.Decoder(_list_type(record_type, self.records_key)).decode
        self._conversions = _conversion_plan(self.plan)

    def read_page(self, content: bytes) -> dict:
        """A listing's response body: `{"nextPageToken": ...}` at once, and its records, which
        `records` shapes when they are first asked for. So a prefetching worker can ask for the
        next page as soon as the body is decoded: only the token is on that path."""
        try:
            page = self._read_list(content)
        except msgspec.ValidationError:
            return self._walk_page(content)
        body: dict = {_DECODED: (page.items or [], content)}
        if page.nextPageToken is not UNSET:
            body["nextPageToken"] = page.nextPageToken
        return body

    def records(self, body: dict) -> list[dict]:
        """The shaped records of a body `read_page` made."""
        key = self.records_key
        decoded = body.pop(_DECODED, None)
        if decoded is not None:
            items, content = decoded
            try:
                body[key] = self._finish(_builtins(items))
            except ValueError:
                body[key] = self._walk_page(content)[key]
        return body[key]

    def _walk_page(self, content: bytes) -> dict:
        """The general walk over a page the typed decoding refused."""
        key = self.records_key
        body = read_body(content)
        items = body.get(key) or []
        body[key] = [self.shape(item) for item in (items if isinstance(items, list) else [items])]
        return body

    def read_resource(self, content: bytes) -> dict:
        """The response body of a request for one resource, shaped as a record."""
        try:
            return self._finish([_builtins(self._read_record(content))])[0]
        except (msgspec.ValidationError, ValueError):
            return self.shape(read_body(content))

    def _finish(self, records: list[dict]) -> list[dict]:
        """Convert what decoding left undone. Any refusal (ValueError) sends the body
        to the general walk, which words the message."""
        conversions = self._conversions
        for record in records:
            _convert(record, conversions)
            if not record.get("id"):
                raise ValueError("a record without an id")
        return records

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
            try:
                return _integer(value)
            except ValueError:
                pass
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


_WIRE_SCALARS: dict[str, t.Any] = {
    # int64 travels as a string, int32 as a number; timestamps are read, then converted to UTC.
    "integer": int | str,
    "number": int | float,
    "boolean": bool,
    "string": str,
    "datetime": AwareDatetime,
    "any": t.Any,
}


def _wire_type(plan: dict, name: str) -> type:
    """A msgspec Struct of a plan's fields as they travel: all optional and nullable, nothing
    undeclared allowed (such a body takes the general walk). Attribute names are generated;
    `rename` maps them to the API's, so no field name can clash with Python's."""
    fields = [
        (f"f{i}", _wire_field(spec, f"{name}_{key}")) for i, (key, spec) in enumerate(plan.items())
    ]
    return msgspec.defstruct(
        name,
        [(attr, kind | None | UnsetType, UNSET) for attr, kind in fields],
        rename={f"f{i}": key for i, key in enumerate(plan)},
        forbid_unknown_fields=True,
    )


def _wire_field(spec: tuple[str, t.Any], name: str) -> t.Any:
    kind, nested = spec
    if kind == "object":
        return _wire_type(nested, name)
    if kind == "array":
        return list[_wire_field(nested, name) | None]
    return _WIRE_SCALARS[kind]


def _list_type(record_type: type, records_key: str) -> type:
    return msgspec.defstruct(
        "Page",
        [
            ("items", list[record_type] | None | UnsetType, UNSET),
            ("nextPageToken", str | UnsetType, UNSET),
        ],
        rename={"items": records_key},
    )


Conversions = tuple[tuple[str, t.Callable[[t.Any], t.Any] | None, t.Any], ...]


def _integer(value: t.Any) -> int:
    """An integer, or an int64 as Google sends it (a string of digits); ValueError otherwise."""
    if type(value) is int:
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ValueError(value)


_CONVERTERS: dict[str, t.Callable[[t.Any], t.Any]] = {"integer": _integer, "datetime": utc_text}


def _each(convert: t.Callable[[t.Any], t.Any]) -> t.Callable[[list], list]:
    return lambda values: [None if v is None else convert(v) for v in values]


def _conversion_plan(plan: dict) -> Conversions:
    """The fields decoding leaves unconverted, as (key, converter, None) for a value to
    convert and (key, None, nested conversions) for an object or a list of objects."""
    steps = []
    for key, (kind, nested) in plan.items():
        if kind in _CONVERTERS:
            steps.append((key, _CONVERTERS[kind], None))
        elif kind == "object" and (inner := _conversion_plan(nested)):
            steps.append((key, None, inner))
        elif kind == "array" and nested[0] in _CONVERTERS:
            steps.append((key, _each(_CONVERTERS[nested[0]]), None))
        elif kind == "array" and nested[0] == "object" and (inner := _conversion_plan(nested[1])):
            steps.append((key, None, inner))
    return tuple(steps)


def _convert(obj: dict, conversions: Conversions) -> None:
    for key, convert, nested in conversions:
        value = obj.get(key)
        if value is None:
            continue
        if convert is not None:
            obj[key] = convert(value)
        elif type(value) is dict:
            _convert(value, nested)
        else:
            for item in value:
                if item is not None:
                    _convert(item, nested)


def _preview(value: t.Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
