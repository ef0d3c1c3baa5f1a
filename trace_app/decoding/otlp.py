"""OTLP/HTTP trace requests (``ExportTraceServiceRequest``), protobuf and JSON, into span rows.

JSON follows OTLP's rules: trace and span ids in hex of either case (not base64: 32 and 16
digits), enums as integers (names are accepted too), 64-bit integers as strings or numbers,
lowerCamelCase field names (the proto's snake_case names are accepted too), unknown fields
ignored; fields the platform does not keep (``flags``, ``traceState``, the dropped counts) are
still held to their types.  A request that cannot be read raises
``Undecodable``; a span that can be read but not stored (a bad id, an implausible time) is
counted in ``Decoded.refused`` and the others are kept (OTLP's partial success).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from trace_app.decoding.common import (
    MAX_TEXT,
    NAME_MAX,
    Refused,
    Undecodable,
    check_moment,
    keys_kept,
    new_span,
    parent_id,
    span_id,
    text,
    trace_id,
)

#: An int64 as OTLP JSON writes it in a string (ASCII digits: ``str.isdigit`` also takes '²').
_INT64_TEXT = re.compile(r"\s*-?[0-9]+\s*")
#: OTLP/JSON's ids: hex of either case, 32 digits for a trace id (16 bytes), 16 for a span id.
_TRACE_HEX, _SPAN_HEX = re.compile(r"[0-9a-fA-F]{32}"), re.compile(r"[0-9a-fA-F]{16}")
KINDS = {0: "", 1: "", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
KIND_NAMES = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
STATUS_ERROR = 2
#: Attributes naming the peer of a client or producer span, best first (used when no span of the
#: peer arrives: an uninstrumented database, queue or third-party API).
PEER_ATTRIBUTES = ("peer.service", "db.system", "messaging.system", "server.address", "net.peer.name")


#: URL attributes whose host names the peer when nothing better does (``http.url``: the HTTP
#: semantic conventions before 1.21, which opentelemetry-instrumentation-requests still sends).
URL_ATTRIBUTES = ("url.full", "http.url")


def _url_host(tags: dict[str, Any]) -> str:
    for key in URL_ATTRIBUTES:
        value = tags.get(key)
        if isinstance(value, str) and value:
            try:
                return urlsplit(value).hostname or ""
            except ValueError:  # not a URL: no peer from it
                return ""
    return ""


@dataclass
class Decoded:
    spans: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def add(self, build: Any, *args: Any) -> None:
        try:
            self.spans.append(build(*args))
        except Refused as exc:
            self.refused.append(str(exc))


# --- protobuf ---------------------------------------------------------------------------------


def _pb_value(value: Any) -> Any:
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return value.int_value
    if which == "bool_value":
        return value.bool_value
    if which == "double_value":
        return value.double_value
    if which == "array_value":
        return [_pb_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _pb_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":  # base64, as OTLP/JSON writes bytes: one tag whichever encoding came
        return base64.b64encode(value.bytes_value).decode("ascii")
    return None


def _pb_attributes(attributes: Any) -> dict[str, str]:
    out = {}
    for kv in attributes:
        value = kv.value
        if value.WhichOneof("value") == "string_value":  # cut and cleaned as text() does, more cheaply
            given = value.string_value
            out[kv.key] = given if len(given) <= MAX_TEXT and "\x00" not in given else text(given)
        else:
            out[kv.key] = _tag(_pb_value(value))
    return out


def _tag(value: Any) -> str:
    """An attribute's value as a tag: OTLP's empty value (no field set, or JSON's null) is ""."""
    return "" if value is None else text(value)


def _pb_span(span: Any, service: str, resource: dict[str, str], scope: dict[str, Any]) -> dict[str, Any]:
    if len(span.trace_id) != 16:
        raise Refused(f"trace_id is {len(span.trace_id)} bytes, not 16")
    if len(span.span_id) != 8:
        raise Refused(f"span_id is {len(span.span_id)} bytes, not 8")
    if span.parent_span_id and len(span.parent_span_id) != 8:
        raise Refused(f"parent_span_id is {len(span.parent_span_id)} bytes, not 8")
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    if end < start:
        raise Refused(f"span {span.span_id.hex()} ends before it starts (negative duration)")
    events = [
        _annotation(event.time_unix_nano, event.name, _pb_attributes(event.attributes))
        for event in span.events
    ]
    links = [
        _link(link.trace_id.hex(), link.span_id.hex(), _pb_attributes(link.attributes)) for link in span.links
    ]
    return _row(
        trace_id(span.trace_id.hex()),
        span_id(span.span_id.hex()),
        parent_id(span.parent_span_id.hex()),
        span.name,
        span.kind,
        start,
        end,
        _pb_attributes(span.attributes),
        events,
        links,
        span.status.code,
        span.status.message,
        service,
        resource,
        scope,
    )


def decode_protobuf(body: bytes) -> Decoded:
    try:
        request = ExportTraceServiceRequest.FromString(body)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise Undecodable(f"not an OTLP ExportTraceServiceRequest: {exc}") from None
    decoded = Decoded()
    for resource_spans in request.resource_spans:
        resource = _pb_attributes(resource_spans.resource.attributes)
        service = resource.get("service.name", "")
        for scope_spans in resource_spans.scope_spans:
            info = scope_spans.scope
            scope = _scope(info.name, info.version, _pb_attributes(info.attributes))
            for span in scope_spans.spans:
                decoded.add(_pb_span, span, service, resource, scope)
    return decoded


# --- JSON -------------------------------------------------------------------------------------


def _get(mapping: dict[str, Any], camel: str, snake: str, default: Any = None) -> Any:
    if camel in mapping:
        return mapping[camel]
    return mapping.get(snake, default)


def _integer(value: Any, what: str, bits: int, *, unsigned: bool) -> int:
    """An integer of OTLP/JSON (a number, or its decimal text; null is 0) of ``bits`` bits."""
    kind = f"{'an unsigned' if unsigned else 'a'} {bits}-bit integer"
    if isinstance(value, str) and _INT64_TEXT.fullmatch(value):
        digits = value.strip().lstrip("-").lstrip("0") or "0"
        if len(digits) > 40:  # int() refuses text past 4,300 digits (leading zeros counted)
            raise Refused(f"{what} {value.strip()[:20]}... is not {kind}")
        value = -int(digits) if value.strip().startswith("-") else int(digits)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise Refused(f"{what} is not an integer")
    low, high = (0, 2**bits) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1))
    if not low <= value < high:
        raise Refused(f"{what} {value} is not {kind}")
    return value


def _int64(value: Any, what: str, *, unsigned: bool = False) -> int:
    """An int64 of OTLP/JSON (a number, or its decimal text), or a uint64 (times in ns)."""
    return _integer(value, what, 64, unsigned=unsigned)


#: Fields of a span, an event and a link the platform does not keep, with their types: a value of
#: another type refuses the span, as protobuf's JSON parser refuses it (``flags`` is a fixed32,
#: the dropped counts uint32s, ``traceState`` a string).
_UNKEPT = {
    "span": (
        ("traceState", "trace_state", str),
        ("flags", "flags", int),
        ("droppedAttributesCount", "dropped_attributes_count", int),
        ("droppedEventsCount", "dropped_events_count", int),
        ("droppedLinksCount", "dropped_links_count", int),
    ),
    "event": (("droppedAttributesCount", "dropped_attributes_count", int),),
    "link": (
        ("traceState", "trace_state", str),
        ("flags", "flags", int),
        ("droppedAttributesCount", "dropped_attributes_count", int),
    ),
}


_WHOSE = {"span": "", "event": "an event's ", "link": "a link's "}


def _check_unkept(message: dict[str, Any], what: str) -> None:
    """Refused when a field of ``message`` (a span, an event or a link) the platform does not keep
    has a value its type does not take (``"flags": "x"``, ``"droppedAttributesCount": -1``)."""
    for camel, snake, kind in _UNKEPT[what]:
        value, label = _get(message, camel, snake), _WHOSE[what] + camel
        if kind is str:
            _string(value, label)
        else:
            _integer(value, label, 32, unsigned=True)


#: The fields of an AnyValue (its ``value`` oneof), in both spellings, each to its lowerCamelCase.
_VALUE_FIELDS = {
    spelling: camel
    for camel, snake in (
        ("stringValue", "string_value"),
        ("boolValue", "bool_value"),
        ("intValue", "int_value"),
        ("doubleValue", "double_value"),
        ("arrayValue", "array_value"),
        ("kvlistValue", "kvlist_value"),
        ("bytesValue", "bytes_value"),
    )
    for spelling in (camel, snake)
}


def _json_value(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Refused(f"an attribute's value {repr(value)[:40]} is not an AnyValue object")
    given = [key for key, item in value.items() if key in _VALUE_FIELDS and item is not None]
    if len(given) > 1:  # protobuf's JSON parser refuses it: the fields are one oneof
        raise Refused(f"an AnyValue sets {' and '.join(given)}, not one value")
    if not given:
        return None
    field, item = _VALUE_FIELDS[given[0]], value[given[0]]
    for camel, kind, what in (("stringValue", str, "a string"), ("boolValue", bool, "true or false")):
        if field == camel:
            if not isinstance(item, kind):  # a number is not taken as text
                raise Refused(f"{camel} {repr(item)[:40]} is not {what}")
            return item
    if field == "bytesValue":
        return _bytes(item)
    if field == "doubleValue":
        return _double(item)
    if field == "intValue":
        return _int64(item, "intValue")
    if field == "arrayValue":
        return [_json_value(entry) for entry in _list(item, "values", "arrayValue")]
    return _json_attributes(_list(item, "values", "kvlistValue"), raw=True)


def _bytes(value: Any) -> str | None:
    """A bytes value of OTLP/JSON (base64, standard or URL-safe, padded or not) in the standard
    base64 a protobuf request's bytes give."""
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise ValueError
        padded = value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4)
        return base64.b64encode(base64.b64decode(padded, validate=True)).decode("ascii")
    except ValueError:  # binascii.Error is one
        raise Refused(f"bytesValue {repr(value)[:40]} is not base64") from None


def _double(value: Any) -> float | None:
    """A double of OTLP/JSON (a number, or text: "1.5", "NaN", "Infinity"), as a float: the tag it
    gives is the one the same attribute gives in protobuf ("1.0" for 1, not "1")."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        return float(value) if isinstance(value, str) else float("")
    except ValueError:
        raise Refused(f"doubleValue {repr(value)[:40]} is not a number") from None


def _array(value: Any, what: str) -> list[Any]:
    """A JSON array field (absent or null: empty); Refused when it is something else."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise Refused(f"{what} is not a list")
    return value


def _list(container: Any, key: str, what: str) -> list[Any]:
    """The list ``key`` of the message ``container`` (either absent or null: empty); Refused when
    either is something else (protobuf's JSON parser refuses ``{"resourceSpans": {}}`` too)."""
    if container is None:
        return []
    if not isinstance(container, dict):
        raise Refused(f"{what} is not an object")
    return _array(container.get(key), key)


def _json_attributes(items: Any, raw: bool = False) -> dict[str, Any]:
    if items is None:
        return {}
    if not isinstance(items, list):
        raise Refused("attributes is not a list")
    out: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise Refused("an attribute has no key")
        value = _json_value(item.get("value"))
        out[item["key"]] = value if raw else _tag(value)
    return out


def _enum(value: Any, names: dict[str, int], what: str) -> int:
    if isinstance(value, str) and value in names:
        return names[value]
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise Refused(f"{what} {value!r} is not one of its enum values")


def _trace_id(value: Any, what: str = "traceId") -> str:
    """An OTLP trace id: 16 bytes, 32 hex digits of either case (Zipkin's 64-bit form is not one,
    in JSON either), stored in lower case."""
    if not isinstance(value, str) or not _TRACE_HEX.fullmatch(value):
        raise Refused(f"{what} {repr(value)[:40]} is not 32 hex characters (16 bytes; either case)")
    return trace_id(value.lower())


def _span_id(value: Any, what: str = "spanId") -> str:
    """An OTLP span id: 8 bytes, 16 hex digits of either case, stored in lower case."""
    if not isinstance(value, str) or not _SPAN_HEX.fullmatch(value):
        raise Refused(f"{what} {repr(value)[:40]} is not 16 hex characters (8 bytes; either case)")
    return span_id(value.lower(), what)


def _string(value: Any, what: str) -> str:
    """A string field of OTLP/JSON: null is its default (""), anything but a string is refused."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Refused(f"{what} is not a string")
    return value


def _json_span(span: Any, service: str, resource: dict[str, str], scope: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(span, dict):
        raise Refused("a span is not an object")
    status = _get(span, "status", "status") or {}
    if not isinstance(status, dict):
        raise Refused("status is not an object")
    events = []
    _check_unkept(span, "span")
    for event in _array(span.get("events"), "events"):
        if not isinstance(event, dict):
            raise Refused("an event is not an object")
        _check_unkept(event, "event")
        events.append(
            _annotation(
                _int64(_get(event, "timeUnixNano", "time_unix_nano"), "timeUnixNano", unsigned=True),
                _string(event.get("name"), "an event's name"),
                _json_attributes(event.get("attributes")),
            )
        )
    links = []
    for link in _array(span.get("links"), "links"):
        if not isinstance(link, dict):
            raise Refused("a link is not an object")
        _check_unkept(link, "link")
        links.append(
            _link(
                _get(link, "traceId", "trace_id"),
                _get(link, "spanId", "span_id"),
                _json_attributes(link.get("attributes")),
            )
        )
    start = _int64(
        _get(span, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano", unsigned=True
    )
    end = _int64(_get(span, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano", unsigned=True)
    if end < start:
        raise Refused("a span ends before it starts (negative duration)")
    return _row(
        _trace_id(_get(span, "traceId", "trace_id")),
        _span_id(_get(span, "spanId", "span_id")),
        _parent_id(_get(span, "parentSpanId", "parent_span_id")),
        _string(span.get("name"), "name"),
        _enum(span.get("kind"), KIND_NAMES, "kind"),
        start,
        end,
        _json_attributes(span.get("attributes")),
        events,
        links,
        _enum(status.get("code"), STATUS_NAMES, "status code"),
        _string(status.get("message"), "status message"),
        service,
        resource,
        scope,
    )


def decode_json(body: bytes) -> Decoded:
    try:
        request = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise Undecodable(f"not JSON: {exc}") from None
    if not isinstance(request, dict):
        raise Undecodable("an ExportTraceServiceRequest is a JSON object")
    decoded = Decoded()
    try:
        for resource_spans in _array(_get(request, "resourceSpans", "resource_spans"), "resourceSpans"):
            if not isinstance(resource_spans, dict):
                raise Refused("resourceSpans holds a non-object")
            resource = _json_attributes(_list(resource_spans.get("resource"), "attributes", "resource"))
            service = resource.get("service.name", "")
            for scope_spans in _array(_get(resource_spans, "scopeSpans", "scope_spans"), "scopeSpans"):
                if not isinstance(scope_spans, dict):
                    raise Refused("scopeSpans holds a non-object")
                scope_info = scope_spans.get("scope") or {}
                if not isinstance(scope_info, dict):
                    raise Refused("scope is not an object")
                scope = _scope(
                    _string(scope_info.get("name"), "scope name"),
                    _string(scope_info.get("version"), "scope version"),
                    _json_attributes(_list(scope_info, "attributes", "scope")),
                )
                for span in _list(scope_spans, "spans", "scopeSpans"):
                    decoded.add(_json_span, span, service, resource, scope)
    except Refused as exc:  # the request's structure, not one span: nothing is stored
        raise Undecodable(str(exc)) from None
    return decoded


# --- shared -----------------------------------------------------------------------------------


def _scope(name: str, version: str, attributes: dict[str, str]) -> dict[str, Any]:
    """The instrumentation scope: its name and version cut as names are (and its name tag with
    them), its attributes as tags are kept."""
    scope: dict[str, Any] = {
        key: text(value, NAME_MAX) for key, value in (("name", name), ("version", version)) if value
    }
    if attributes:
        scope["attributes"] = keys_kept(attributes)
    return scope


def _no_id(value: Any) -> bool:
    return value in (None, "") or (isinstance(value, str) and not value.strip("0"))


def _parent_id(value: Any) -> str:
    """A parent span id, or "" for none (absent, empty or all zeros)."""
    return "" if _no_id(value) else _span_id(value, "parentSpanId")


def _annotation(time_unix_nano: int, name: str, attributes: dict[str, Any]) -> dict[str, Any]:
    check_moment(time_unix_nano, "an event's timeUnixNano", 1000)  # as the span's start: it refuses the span
    annotation: dict[str, Any] = {"timestamp": time_unix_nano // 1000, "value": text(name)}
    if attributes:
        annotation["attributes"] = keys_kept(attributes)
    return annotation


def _link(trace: Any, span: Any, attributes: dict[str, Any]) -> dict[str, Any]:
    """A link, its ids checked as a span's own are (a malformed one refuses the span).  Empty or
    all-zero ids are kept as "": OTel records a link to an invalid context that has attributes."""
    link: dict[str, Any] = {
        "trace_id": "" if _no_id(trace) else _trace_id(trace, "link trace id"),
        "span_id": "" if _no_id(span) else _span_id(span, "link span id"),
    }
    if attributes:
        link["attributes"] = keys_kept(attributes)
    return link


def _row(
    trace: str,
    span: str,
    parent: str,
    name: str,
    kind_number: int,
    start_ns: int,
    end_ns: int,
    tags: dict[str, str],
    annotations: list[dict[str, Any]],
    links: list[dict[str, Any]],
    status_code: int,
    status_message: str,
    service: str,
    resource: dict[str, str],
    scope: dict[str, Any],
) -> dict[str, Any]:
    if kind_number not in KINDS:
        raise Refused(f"kind {kind_number} is not an OTLP span kind")
    check_moment(start_ns, "startTimeUnixNano", 1000)  # told in OTLP's unit (check_time speaks Zipkin's)
    kind = KINDS[kind_number]
    error = status_code == STATUS_ERROR
    if status_code in (1, 2):  # Zipkin's conventions, so its tools see the status
        tags["otel.status_code"] = "OK" if status_code == 1 else "ERROR"
    if error:
        tags["error"] = text(status_message)
    if scope.get("name"):
        tags.setdefault("otel.scope.name", scope["name"])
    remote = ""
    if kind in ("CLIENT", "PRODUCER"):
        remote = next((tags[key] for key in PEER_ATTRIBUTES if tags.get(key)), "") or _url_host(tags)
    return new_span(
        trace=trace,
        span=span,
        parent=parent,
        name=name,
        kind=kind,
        service=service,
        remote_service=remote,
        timestamp=start_ns // 1000,
        duration=(end_ns - start_ns) // 1000,
        tags=tags,
        annotations=annotations,
        links=links,
        resource=resource,
        scope=scope,
        remote_endpoint={"serviceName": remote} if remote else {},
        error=error,
    )
