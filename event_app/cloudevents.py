"""Reading events off the wire: native JSON and the CloudEvents 1.0 HTTP bindings, with validation.

Everything here is pure (no database): :func:`parse_request` turns a request's headers and body into
a list of :class:`EventIn`, or raises :class:`InvalidEvents` naming every failing index and field,
so a malformed batch is refused whole before anything is written.

Modes (CloudEvents HTTP protocol binding 1.0.2):

- binary: ``ce-specversion``, ``ce-id``, ``ce-source``, ``ce-type`` ... headers, the body is ``data``;
- structured: ``Content-Type: application/cloudevents+json``, the body is one event object;
- batch: ``Content-Type: application/cloudevents-batch+json``, the body is a list of event objects;
- native: ``Content-Type: application/json``, one object or a list.  An object carrying
  ``specversion`` is read strictly as a CloudEvent; otherwise ``id`` (a new UUID) and
  ``specversion`` may be left out, and ``root_id``, ``traceparent`` and ``metadata`` (extension
  attributes) are accepted by those names; any other field is refused, not taken as an extension.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.utils import timezone

from platformsite import localstate
from platformsite.jsonvalues import UNSTORABLE_CHARS, unstorable

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
CORE = {"id", "source", "type", "specversion", "time", "subject", "datacontenttype", "dataschema"}
EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}\Z")
#: What may follow ``ce-`` in a binary-mode header: an attribute's name (header names are lowercased).
HEADER_ATTRIBUTE = re.compile(r"^[a-z0-9]+\Z")
#: Names an extension attribute cannot take: they are CloudEvents attributes of their own.
RESERVED_NAMES = CORE | {"data", "data_base64"}
#: What a webhook delivery carries the platform's sequence as (``representation.cloudevent_dict``).
PLATFORM_ID_EXTENSION = "platformid"
RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$",
)
#: ``dataschema`` is a URI (RFC 3986, with a scheme: JSON Schema's ``uri`` format, as CloudEvents'
#: own schema checks it), in the characters a URI may hold.
URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*\Z")
#: ``source`` is a URI-reference (RFC 3986 §4.1): a URI (``https://a/b``, ``urn:x``) or a relative
#: reference (``/orders``, ``billing``; no ':' in a first segment without a scheme), every
#: character outside the unreserved and reserved ones percent-encoded (``%20``).
_PCT = r"%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|{_PCT})"
_SEGMENT_NC = rf"(?:[A-Za-z0-9\-._~!$&'()*+,;=@]|{_PCT})+"
_AUTHORITY = (
    rf"(?:(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|{_PCT})*@)?"  # userinfo
    r"(?:\[(?:[0-9A-Fa-f:.]+|[vV][0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+)\]"  # IP-literal
    rf"|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|{_PCT})*)"  # IPv4 address or registered name
    r"(?::[0-9]*)?"  # port
)
URI_REFERENCE = re.compile(
    rf"(?:[A-Za-z][A-Za-z0-9+.\-]*:(?://{_AUTHORITY}(?:/{_PCHAR}*)*|/?(?:{_PCHAR}+(?:/{_PCHAR}*)*)?)"
    rf"|//{_AUTHORITY}(?:/{_PCHAR}*)*|/(?:{_PCHAR}+(?:/{_PCHAR}*)*)?|(?:{_SEGMENT_NC}(?:/{_PCHAR}*)*)?)"
    rf"(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?"
)
#: What CloudEvents' ``String`` disallows (1.0.2, "Type System"), beyond NUL and lone surrogates
#: (:data:`UNSTORABLE_CHARS`): the control characters U+0001-U+001F and U+007F-U+009F (a tab or a
#: newline too) and Unicode's noncharacters, U+FDD0-U+FDEF and the last two code points of each plane.
NOT_STRING_CHARS = re.compile(
    "[\x01-\x1f\x7f-\x9f\ufdd0-\ufdef"
    + "".join(chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(17))
    + "]"
)


def not_string(value: str) -> bool:
    """Whether ``value`` holds a character a CloudEvents String disallows; printable ASCII (nearly
    every attribute) is answered without the pattern, which costs microseconds a string."""
    return not (value.isascii() and value.isprintable()) and NOT_STRING_CHARS.search(value) is not None


@functools.lru_cache(maxsize=4096)
def is_uri_reference(source: str) -> bool:
    """``source`` is an RFC 3986 URI-reference (remembered: a publisher sends one source over and
    over, and the pattern costs a few microseconds)."""
    return URI_REFERENCE.fullmatch(source) is not None


localstate.register_cache(
    "events.source_references",
    size=lambda: is_uri_reference.cache_info().currsize,
    reset=is_uri_reference.cache_clear,
)


NOT_STRING_TEXT = (
    "must not contain control characters (U+0000-U+001F, U+007F-U+009F) or Unicode noncharacters"
    " (U+FDD0-U+FDEF, U+FFFE, U+FFFF, ...), which a CloudEvents String disallows"
)
#: A backslash escape inside a double-quoted header value.
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
NOT_UTF8_HEADER = (
    "is not UTF-8 once percent-decoded: send each byte of the value's UTF-8 as %XY (a literal % as %25)"
)
#: ``datacontenttype`` is a media type (RFC 2046): ``type/subtype``, parameters after a ``;``.
MEDIA_TYPE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+\s*(;.*)?\Z", re.DOTALL)
LIMITS = {"id": 200, "source": 500, "type": 200, "subject": 500, "datacontenttype": 200, "dataschema": 500}
#: The error for text PostgreSQL cannot store in ``text`` or ``jsonb``.
UNSTORABLE_TEXT = "must not contain NUL characters or lone surrogates"
#: A NUL character escaped in JSON text (``\u0000`` after an even number of backslashes): PostgreSQL
#: refuses it in ``text`` and ``jsonb``.
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
#: Deepest nesting of arrays and objects in ``data``: deeper, the JSON encoders that store and serve
#: it (recursive, under Python's recursion limit) fail, depending on how deep their caller's stack is.
MAX_DATA_DEPTH = 200
#: JSON text without spaces; NaN and Infinity (which no database stores) raise ValueError.
compact_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
#: Extension attributes the platform maps to columns of its own.
ROOT_ID_EXTENSION = "rootid"
MAX_ROOT_ID = 200  # the column's length
#: Bounds of extension attributes, which CloudEvents leaves open (``data`` has its own limit).
MAX_EXTENSIONS = 50
MAX_EXTENSION_CHARS = 2048
#: CloudEvents' ``Integer``: a signed 32-bit whole number.
INTEGER_RANGE = range(-(2**31), 2**31)
TRACEPARENT_EXTENSION = "traceparent"


@dataclass
class EventIn:
    """One validated event, ready to be stored."""

    event_id: str
    source: str
    type: str
    specversion: str = "1.0"
    time: datetime | None = None
    subject: str = ""
    datacontenttype: str = ""
    dataschema: str = ""
    data: Any = None
    data_base64: str = ""
    extensions: dict[str, Any] = field(default_factory=dict)
    root_id: str = ""
    traceparent: str = ""
    #: ``data`` as compact JSON text, as validation measured it (a COPY writes it as it is).
    data_json: str | None = field(default=None, repr=False, compare=False)


class InvalidEvents(Exception):
    """The request's events do not validate; ``errors`` lists ``{index, field, message}``."""

    def __init__(
        self, errors: list[dict[str, Any]], *, too_large: bool = False, not_json: bool = False
    ) -> None:
        super().__init__(f"{len(errors)} invalid attribute(s)")
        self.errors = errors
        self.too_large = too_large
        self.not_json = not_json  # the body does not parse at all


class UnsupportedMediaType(Exception):
    pass


def is_json_media(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media in {"application/json", "text/json"} or media.endswith("+json")


def parse_time(value: Any) -> datetime:
    if not isinstance(value, str) or not RFC3339.match(value):
        raise ValueError("must be an RFC 3339 timestamp, e.g. 2026-01-31T12:00:00Z")
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError as exc:
        raise ValueError(f"is not a valid RFC 3339 timestamp: {exc}") from exc
    try:
        # In UTC, as stored: 0001-01-01T00:00:00+01:00 is before year 1, and PostgreSQL refuses
        # the offsets beyond 15:59 that Python parses (up to 23:59).
        return parsed.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("is out of range (years 1 to 9999 in UTC)") from exc


class _Checker:
    """Collects the errors of one request, event by event."""

    def __init__(self) -> None:
        self.errors: list[dict[str, Any]] = []
        self.size_errors = 0
        self.max_data = settings.EVENTS_MAX_DATA_BYTES

    def error(self, index: int, field_name: str, message: str) -> None:
        self.errors.append({"index": index, "field": field_name, "message": message})

    def string(self, index: int, obj: dict, name: str, *, required: bool, default: str = "") -> str:
        value = obj.get(name)
        if value is None or value == "":
            if required:
                self.error(index, name, "is required")
            return default
        if not isinstance(value, str):
            self.error(index, name, "must be a string")
            return default
        if len(value) > LIMITS.get(name, 500):
            self.error(index, name, f"is longer than {LIMITS.get(name, 500)} characters")
        if UNSTORABLE_CHARS.search(value):
            self.error(index, name, UNSTORABLE_TEXT)
        elif not_string(value):
            self.error(index, name, NOT_STRING_TEXT)
        return value

    def optional(
        self, index: int, obj: dict, name: str, pattern: re.Pattern | None = None, expected: str = ""
    ) -> str:
        """An OPTIONAL attribute: left out (or null) it is unset; given, CloudEvents wants it non-empty."""
        if obj.get(name) == "":
            self.error(index, name, "must not be empty: leave it out (or null) when there is none")
            return ""
        value = self.string(index, obj, name, required=False)
        if value and pattern and not pattern.match(value):
            self.error(index, name, f"must be {expected}")
        return value

    def data_json(self, index: int, data: Any) -> str | None:
        """``data`` as compact JSON text; records an error for what JSON (or PostgreSQL) cannot keep."""
        if data is None:
            return None
        try:
            text = compact_json(data)
        except ValueError:
            self.error(index, "data", "numbers must be finite (no NaN or Infinity)")
            return None
        except RecursionError:
            text = "[" * (MAX_DATA_DEPTH + 1)
        if text.count("[") + text.count("{") > MAX_DATA_DEPTH and _deeper_than(data, MAX_DATA_DEPTH):
            self.error(index, "data", f"nests arrays and objects more than {MAX_DATA_DEPTH} deep")
            return None
        # A NUL or a lone surrogate is written as an escape; a pair (a character beyond the BMP) is
        # two escapes too, so a surrogate escape is only a hint that the data must be looked at.
        if ("\\u0000" in text and _JSON_NUL.search(text)) or (
            "\\ud" in text and unstorable(data, max_depth=MAX_DATA_DEPTH + 1)
        ):
            self.error(index, "data", UNSTORABLE_TEXT)
        return text

    def event(self, index: int, obj: Any, *, strict: bool) -> EventIn | None:
        if not isinstance(obj, dict):
            self.error(index, "", "must be a JSON object")
            return None
        before = len(self.errors)
        native = not strict and "specversion" not in obj
        specversion = self.string(index, obj, "specversion", required=not native, default="1.0")
        if specversion and specversion != "1.0":
            self.error(index, "specversion", f"must be '1.0', not {specversion!r}")
        event_id = self.string(index, obj, "id", required=not native) or uuid.uuid4().hex
        checked = len(self.errors)
        source = self.string(index, obj, "source", required=True)
        if source and len(self.errors) == checked and not is_uri_reference(source):
            message = "must be a URI-reference (RFC 3986), e.g. /orders, urn:example:orders or https://example.com/orders"
            self.error(index, "source", message + ": percent-encode spaces and other characters (%20)")
        type_ = self.string(index, obj, "type", required=True)
        when = None
        if obj.get("time") is not None:
            try:
                when = parse_time(obj["time"])
            except ValueError as exc:
                self.error(index, "time", str(exc))
        subject = self.optional(index, obj, "subject")
        dataschema = self.optional(
            index, obj, "dataschema", URI, "a URI with a scheme, e.g. https://example.com/schema.json"
        )
        datacontenttype = self.optional(
            index, obj, "datacontenttype", MEDIA_TYPE, "a media type (RFC 2046), e.g. application/json"
        )
        data, data_base64, data_json = obj.get("data"), obj.get("data_base64") or "", None
        if data is not None and data_base64:
            self.error(index, "data_base64", "cannot be given together with data")
        if data_base64:
            if not isinstance(data_base64, str):
                self.error(index, "data_base64", "must be a base64 string")
            else:
                try:
                    base64.b64decode(data_base64, validate=True)
                except ValueError:
                    self.error(index, "data_base64", "is not valid base64")
            size = len(data_base64) * 3 // 4 if isinstance(data_base64, str) else 0
        else:
            data_json = self.data_json(index, data)
            size = len(data_json) if data_json is not None else 0
        if size > self.max_data:
            self.size_errors += 1
            self.error(index, "data", f"is {size} bytes, more than the limit of {self.max_data}")
        if data is not None and not datacontenttype:
            datacontenttype = "application/json"
        extensions: dict[str, Any] = {}
        extra = {k: v for k, v in obj.items() if k not in CORE and k not in {"data", "data_base64"}}
        if native:
            metadata = extra.pop("metadata", None)
            if metadata in (None, {}) and "extensions" in extra:  # the other spelling
                metadata = extra.pop("extensions")
            if metadata is None:
                metadata = {}
            elif not isinstance(metadata, dict):
                self.error(index, "metadata", "must be an object")
                metadata = {}
            for key in ("root_id", "traceparent"):
                if key in extra:
                    metadata.setdefault(key.replace("_", ""), extra.pop(key))
            for name in extra:  # not an extension: a misspelt field (tpye, subjet) would pass unseen
                message = "is not a field of a native event: extension attributes go in metadata"
                self.error(index, name, message + " (or send a CloudEvent, with specversion)")
            extra = dict(metadata)
        counted = len(extra.keys() - {ROOT_ID_EXTENSION, TRACEPARENT_EXTENSION})  # columns of their own
        if counted > MAX_EXTENSIONS:
            self.error(index, "metadata", f"holds {counted} extensions, at most {MAX_EXTENSIONS}")
            extra = {}
        for name, value in extra.items():
            if not EXTENSION_NAME.match(name):
                self.error(index, name, "extension attribute names are 1-20 lowercase letters or digits")
            elif name in RESERVED_NAMES:
                self.error(index, name, "is a CloudEvents attribute, not an extension attribute")
            elif name == PLATFORM_ID_EXTENSION:
                self.error(index, name, "is the platform's own extension (its sequence, set on delivery)")
            elif value is None:
                continue
            elif not isinstance(value, str | int | bool) or isinstance(value, float):
                self.error(index, name, "extension attribute values are strings, integers or booleans")
            elif isinstance(value, int) and not isinstance(value, bool) and value not in INTEGER_RANGE:
                self.error(
                    index, name, "is beyond a CloudEvents Integer (32 bits signed): send it as a string"
                )
            elif isinstance(value, str) and UNSTORABLE_CHARS.search(value):
                self.error(index, name, UNSTORABLE_TEXT)
            elif isinstance(value, str) and not_string(value):
                self.error(index, name, NOT_STRING_TEXT)
            elif isinstance(value, str) and len(value) > MAX_EXTENSION_CHARS:
                self.error(index, name, f"is longer than {MAX_EXTENSION_CHARS} characters")
            else:
                extensions[name] = value
        root_id = str(extensions.pop(ROOT_ID_EXTENSION, ""))
        if len(root_id) > MAX_ROOT_ID:
            self.error(index, "root_id", f"is longer than {MAX_ROOT_ID} characters")
        traceparent = str(extensions.pop(TRACEPARENT_EXTENSION, ""))
        if len(traceparent) > 64:
            self.error(index, "traceparent", "is longer than 64 characters")
        if len(self.errors) > before:
            return None
        return EventIn(
            event_id=event_id,
            source=source,
            type=type_,
            specversion="1.0",
            time=when,
            subject=subject,
            datacontenttype=datacontenttype,
            dataschema=dataschema,
            data=data,
            data_base64=data_base64,
            extensions=extensions,
            root_id=root_id,
            traceparent=traceparent,
            data_json=data_json,
        )


def _deeper_than(data: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` deep in ``data`` (without recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _events(items: list[Any], *, strict: bool) -> list[EventIn]:
    if len(items) > settings.EVENTS_MAX_BATCH:
        raise InvalidEvents(
            [{"index": None, "field": "", "message": f"more than {settings.EVENTS_MAX_BATCH} events"}],
            too_large=True,
        )
    if not items:
        raise InvalidEvents([{"index": None, "field": "", "message": "no event given"}])
    checker = _Checker()
    events = [checker.event(index, item, strict=strict) for index, item in enumerate(items)]
    if checker.errors:
        raise InvalidEvents(checker.errors, too_large=checker.size_errors == len(checker.errors))
    return events  # type: ignore[return-value]


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidEvents(
            [{"index": None, "field": "", "message": f"the body is not JSON: {exc}"}], not_json=True
        ) from exc


def parse_request(headers: dict[str, str], body: bytes) -> tuple[list[EventIn], bool]:
    """Events in a request, and whether it was a list (batch); raises InvalidEvents/UnsupportedMediaType.

    ``headers`` maps lowercase header names to values.
    """
    content_type = headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    # The HTTP binding: an application/cloudevents media type is the structured (or batched)
    # mode, whatever ce- headers come with it; binary mode is any other with ce-specversion.
    if not media.startswith("application/cloudevents"):
        if "ce-specversion" in headers:
            return [_binary(headers, body, content_type)], False
        if any(name.startswith("ce-") for name in headers):  # read as the body, they would be lost
            message = "is required in binary mode: ce- headers were sent without it"
            raise InvalidEvents([{"index": 0, "field": "specversion", "message": message}])
    if media == BATCH:
        items = _json(body)
        if not isinstance(items, list):
            raise InvalidEvents([{"index": None, "field": "", "message": "a batch is a JSON array"}])
        return _events(items, strict=True), True
    if media == STRUCTURED:
        return _events([_json(body)], strict=True), False
    if media in {"application/json", ""}:
        payload = _json(body)
        if isinstance(payload, list):
            return _events(payload, strict=False), True
        return _events([payload], strict=False), False
    raise UnsupportedMediaType(media)


def _binary(headers: dict[str, str], body: bytes, content_type: str) -> EventIn:
    for name, why in (
        ("ce-data", "the body is the data"),  # not attributes
        ("ce-data_base64", "the body is the data"),
        ("ce-datacontenttype", "Content-Type is the data's content type"),  # it would be overridden
    ):
        if name in headers:
            message = f"is not a header in binary mode: {why}"
            raise InvalidEvents([{"index": 0, "field": name[3:], "message": message}])
    message = "is not an attribute header: a name after ce- is lowercase letters and digits (a-z, 0-9)"
    if errors := [
        {"index": 0, "field": name, "message": message}
        for name in headers
        if name.startswith("ce-") and not HEADER_ATTRIBUTE.match(name[3:])
    ]:
        raise InvalidEvents(errors)  # dropped or renamed, the attribute would be lost silently
    obj: dict[str, Any] = {}
    for name, value in headers.items():
        if name.startswith("ce-"):
            try:
                obj[name[3:]] = header_value(value)
            except ValueError:
                errors.append({"index": 0, "field": name[3:], "message": NOT_UTF8_HEADER})
    if errors:
        raise InvalidEvents(errors)  # read as U+FFFD, the attribute would be another one
    if content_type:
        obj["datacontenttype"] = content_type
    if body:
        if is_json_media(content_type):
            obj["data"] = _json(body)
        elif not content_type and body.lstrip()[:1] in (b"{", b"["):
            obj["data"] = _json(body)  # no Content-Type: JSON when it parses as JSON
        else:
            try:
                text = body.decode(_charset(content_type)) if content_type.startswith("text/") else None
            except (UnicodeDecodeError, LookupError):
                text = None
            # Text in its declared charset; bytes that are not such text (or hold NUL) stay base64.
            obj["data"] = text if text is not None and "\x00" not in text else None
            if obj["data"] is None:
                obj["data_base64"] = base64.b64encode(body).decode()
    return _events([obj], strict=True)[0]


def header_value(value: str) -> str:
    """A binary-mode attribute header's value (HTTP binding 1.0.2, 3.1.3.2): a double-quoted string
    unescaped (RFC 7230 3.2.6), then one round of percent-decoding; ValueError unless it is UTF-8.
    ``value`` is the header's bytes as the server gives them, one character per byte (ISO-8859-1,
    PEP 3333): a sender's raw UTF-8 (``café`` unencoded) is read as UTF-8, not as two characters."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = _QUOTED_PAIR.sub(r"\1", value[1:-1])
    return unquote_to_bytes(value.encode("latin-1")).decode("utf-8")


def _charset(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"'):
            return value.strip().strip('"')
    return "utf-8"


def received_now() -> datetime:
    return timezone.now()
