"""JSON responses that survive what a client sent: a lone surrogate ("\\ud800" in JSON) echoed
back in an error message or a stored value is written as its JSON escape, instead of failing the
response with a 500 (UTF-8 cannot encode it). The happy path is DRF's, unchanged."""

from __future__ import annotations

import json
from typing import Any

from rest_framework import renderers


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data: Any, accepted_media_type: Any = None, renderer_context: Any = None) -> bytes:
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:  # a lone surrogate: every non-ASCII character escaped instead
            self.ensure_ascii = True  # a renderer serves one response
            return super().render(data, accepted_media_type, renderer_context)


def json_bytes(data: Any) -> bytes:
    """``data`` as the renderer writes it (compact, UTF-8, NaN refused), for the hot paths."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return json.dumps(data, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode()
