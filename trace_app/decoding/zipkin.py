"""Zipkin v2 spans (``POST /api/v2/spans``), JSON and protobuf (``ListOfSpans``), into span rows.

Zipkin refuses a whole request when one span in it is bad, and so do we: ``Undecodable`` (400)
and nothing stored.  Tag values that are numbers or booleans are accepted and kept as strings.

Zipkin's model lets a span come without its ``timestamp``: a fragment sent after the fact (tags
added late) or whose start event was lost.  Such a span starts at its earliest annotation; one
with no annotation either has nothing to place it in time: it is skipped (``None``), and the
rest of its request is stored.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from typing import Any

from google.protobuf.message import DecodeError

from trace_app.decoding.common import (
    Refused,
    Undecodable,
    check_moment,
    new_span,
    parent_id,
    span_id,
    text,
    trace_id,
)
from trace_app.protos import ListOfSpans

log = logging.getLogger(__name__)

KINDS = {"CLIENT", "SERVER", "PRODUCER", "CONSUMER"}
PROTO_KINDS = {0: "", 1: "CLIENT", 2: "SERVER", 3: "PRODUCER", 4: "CONSUMER"}


def _endpoint(value: Any, what: str) -> tuple[str, dict[str, Any]]:
    """An endpoint's service name and its address fields."""
    if value in (None, {}):
        return "", {}
    if not isinstance(value, dict):
        raise Refused(f"{what} is not an object")
    address: dict[str, Any] = {}
    for key in ("ipv4", "ipv6"):
        if value.get(key) not in (None, ""):
            try:
                address[key] = str(ipaddress.ip_address(value[key]))
            except ValueError:
                raise Refused(f"{what}.{key} {value[key]!r} is not an IP address") from None
    port = value.get("port")
    if port not in (None, 0):
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise Refused(f"{what}.port {port!r} is not a port number")
        address["port"] = port
    service = value.get("serviceName") or ""
    if not isinstance(service, str):
        raise Refused(f"{what}.serviceName is not a string")
    return service, address


def _tags(value: Any) -> dict[str, str]:
    if value in (None, {}):
        return {}
    if not isinstance(value, dict):
        raise Refused("tags is not an object")
    tags = {}
    for key, item in value.items():
        if isinstance(item, dict | list) or item is None:
            raise Refused(f"tag {key!r} is not a string")
        tags[str(key)] = text(item)
    return tags


def _annotations(value: Any) -> list[dict[str, Any]]:
    if value in (None, []):
        return []
    if not isinstance(value, list):
        raise Refused("annotations is not a list")
    out = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("value"), str):
            raise Refused("an annotation has no value")
        stamp = item.get("timestamp")
        if isinstance(stamp, bool) or not isinstance(stamp, int):
            raise Refused("an annotation has no timestamp (microseconds)")
        out.append(_annotation(stamp, item["value"]))
    return out


def _annotation(stamp: int, value: str) -> dict[str, Any]:
    """An annotation, its time checked as a span's start is (a bad one refuses the request)."""
    check_moment(stamp, "an annotation's timestamp")
    return {"timestamp": stamp, "value": text(value)}


def _started(timestamp: Any, annotations: list[dict[str, Any]]) -> Any:
    """A span's start: its ``timestamp``, else (absent, null or 0: a fragment) its earliest
    annotation's; None when it has neither."""
    if timestamp is None or (timestamp == 0 and not isinstance(timestamp, bool)):
        return min((annotation["timestamp"] for annotation in annotations), default=None)
    return timestamp


def _json_span(span: Any) -> dict[str, Any] | None:
    if not isinstance(span, dict):
        raise Refused("a span is not an object")
    kind = span.get("kind") or ""
    if kind and (not isinstance(kind, str) or kind not in KINDS):
        raise Refused(f"kind {kind!r} is not CLIENT, SERVER, PRODUCER or CONSUMER")
    service, local = _endpoint(span.get("localEndpoint"), "localEndpoint")
    remote_service, remote = _endpoint(span.get("remoteEndpoint"), "remoteEndpoint")
    if remote_service:
        remote["serviceName"] = remote_service
    name = span.get("name") or ""
    if not isinstance(name, str):
        raise Refused("name is not a string")
    ids = trace_id(span.get("traceId")), span_id(span.get("id")), parent_id(span.get("parentId"))
    tags, annotations = _tags(span.get("tags")), _annotations(span.get("annotations"))
    shared, debug = _flag(span, "shared"), _flag(span, "debug")
    timestamp = _started(span.get("timestamp"), annotations)
    if timestamp is None:
        return None
    return new_span(
        trace=ids[0],
        span=ids[1],
        parent=ids[2],
        name=name,
        kind=kind,
        service=service,
        remote_service=remote_service,
        timestamp=timestamp,
        duration=_absent_as(span.get("duration"), 0),
        tags=tags,
        annotations=annotations,
        local_endpoint=local,
        remote_endpoint=remote,
        shared=shared,
        debug=debug,
    )


def _absent_as(value: Any, default: Any) -> Any:
    """A field's value, ``default`` when absent or null (Zipkin reads a null field as absent)."""
    return default if value is None else value


def _flag(span: dict[str, Any], key: str) -> bool:
    """A boolean field (absent or null: false); anything else is refused, not read as false."""
    value = span.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise Refused(f"{key} {value!r} is not true or false")
    return value


def decode_json(body: bytes) -> list[dict[str, Any]]:
    try:
        spans = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise Undecodable(f"not JSON: {exc}") from None
    if not isinstance(spans, list):
        raise Undecodable("a list of spans is a JSON array")
    try:
        decoded = [_json_span(span) for span in spans]
    except Refused as exc:
        raise Undecodable(str(exc)) from None
    return _placed(decoded)


def _pb_endpoint(endpoint: Any) -> tuple[str, dict[str, Any]]:
    address: dict[str, Any] = {}
    for key, size in (("ipv4", 4), ("ipv6", 16)):
        raw = getattr(endpoint, key)
        if raw:
            if len(raw) != size:
                raise Refused(f"{key} is {len(raw)} bytes, not {size}")
            address[key] = str(ipaddress.ip_address(raw))
    if endpoint.port:
        address["port"] = endpoint.port
    return endpoint.service_name, address


def _pb_span(span: Any) -> dict[str, Any] | None:
    service, local = _pb_endpoint(span.local_endpoint)
    remote_service, remote = _pb_endpoint(span.remote_endpoint)
    if remote_service:
        remote["serviceName"] = remote_service
    if len(span.id) != 8:
        raise Refused(f"id is {len(span.id)} bytes, not 8")
    if len(span.trace_id) not in (8, 16):
        raise Refused(f"trace_id is {len(span.trace_id)} bytes, not 8 or 16")
    if span.kind not in PROTO_KINDS:  # as JSON's unknown kind is: it was stored as a local span
        raise Refused(f"kind {span.kind} is not a Span.Kind (0-4)")
    ids = trace_id(span.trace_id.hex()), span_id(span.id.hex()), parent_id(span.parent_id.hex())
    annotations = [_annotation(a.timestamp, a.value) for a in span.annotations]
    timestamp = _started(span.timestamp, annotations)
    if timestamp is None:
        return None
    return new_span(
        trace=ids[0],
        span=ids[1],
        parent=ids[2],
        name=span.name,
        kind=PROTO_KINDS[span.kind],
        service=service,
        remote_service=remote_service,
        timestamp=timestamp,
        duration=span.duration,
        tags={key: text(value) for key, value in span.tags.items()},
        annotations=annotations,
        local_endpoint=local,
        remote_endpoint=remote,
        shared=span.shared,
        debug=span.debug,
    )


def decode_protobuf(body: bytes) -> list[dict[str, Any]]:
    try:
        spans = ListOfSpans.FromString(body).spans
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise Undecodable(f"not a zipkin.proto3.ListOfSpans: {exc}") from None
    try:
        decoded = [_pb_span(span) for span in spans]
    except Refused as exc:
        raise Undecodable(str(exc)) from None
    return _placed(decoded)


def _placed(decoded: list[dict[str, Any] | None]) -> list[dict[str, Any]]:
    """The spans that could be placed in time; the others are skipped, and logged (their answer,
    202, has no room to say it)."""
    spans = [span for span in decoded if span is not None]
    if len(spans) < len(decoded):
        log.info("zipkin: %d span(s) without timestamp or annotation skipped", len(decoded) - len(spans))
    return spans


def encode(span: dict[str, Any]) -> dict[str, Any]:
    """A stored span in Zipkin v2 JSON (ids in Zipkin's form: a 64-bit trace id as 16 hex)."""
    trace = span["trace_id"]
    out: dict[str, Any] = {
        "traceId": trace[16:] if trace.startswith("0" * 16) else trace,
        "id": span["span_id"],
    }
    if span["parent_id"]:
        out["parentId"] = span["parent_id"]
    if span["kind"]:
        out["kind"] = span["kind"]
    if span["name"]:
        out["name"] = span["name"]
    out["timestamp"] = span["timestamp"]
    out["duration"] = span["duration"]
    out["localEndpoint"] = {"serviceName": span["service"], **span["local_endpoint"]}
    if span["remote_endpoint"]:
        out["remoteEndpoint"] = span["remote_endpoint"]
    if span["annotations"]:
        out["annotations"] = [{"timestamp": a["timestamp"], "value": a["value"]} for a in span["annotations"]]
    if span["tags"]:
        out["tags"] = span["tags"]
    if span["debug"]:
        out["debug"] = True
    if span["shared"]:
        out["shared"] = True
    return out
