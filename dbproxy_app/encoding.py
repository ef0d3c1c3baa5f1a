"""Records' JSON as it is stored and compared."""

from __future__ import annotations

import json

#: Compact JSON as records are stored (one encoder: ``json.dumps`` with options builds one a call).
#: No ``Infinity`` or ``NaN`` (``1e999`` in a request body reads as infinity): they are not JSON,
#: and the databases' JSON types refuse them. Keys sorted: an object is one text whatever the
#: order it was written in, so SQLite, which compares JSON as text, finds ``data->o=eq.{...}``
#: as PostgreSQL's jsonb does (which keeps no key order either).
encode_json = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, sort_keys=True
).encode
