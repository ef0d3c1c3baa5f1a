"""Content negotiation that does not parse ``Accept`` on every call.

The API answers JSON; parsing the Accept header and building ``request.headers`` cost more
than the rest of a cached read (see tests/bench).  The first renderer answers, unless the
browsable API is on (DEBUG) and the caller asked for HTML.
"""

from __future__ import annotations

from rest_framework.negotiation import DefaultContentNegotiation


class JSONFirstNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        if len(renderers) == 1:
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)
