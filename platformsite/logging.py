"""Structured logs: one JSON object per line carrying the request id and trace id."""

from __future__ import annotations

import json
import logging
import re
from contextvars import ContextVar
from datetime import UTC, datetime

request_id_var: ContextVar[str] = ContextVar("request_id", default="")
trace_id_var: ContextVar[str] = ContextVar("trace_id", default="")

# Attributes every LogRecord has; anything else was passed through ``extra=`` and is kept.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class RequestContextFilter(logging.Filter):
    """Copy the current request's ids onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.trace_id = trace_id_var.get()
        return True


#: A bearer token in a query string (``/ws/config/?access_token=...``, as websocket clients that
#: cannot set headers send it): uvicorn logs the handshake's path with it.
_TOKEN_IN_QUERY = re.compile(r"(access_token=)[^&\s\"']+")


def redact(text: str) -> str:
    if "access_token=" not in text:  # nearly every line: no regex pass
        return text
    return _TOKEN_IN_QUERY.sub(r"\1[redacted]", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key == "color_message":  # uvicorn's copy of the message with ANSI colours
                continue
            if key not in _STANDARD and not key.startswith("_") and value not in ("", None):
                entry[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
