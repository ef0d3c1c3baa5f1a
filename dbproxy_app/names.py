"""The grammars of the db service's names: databases, tables, record ids and metadata keys.

Database and table names become SQL identifiers on the external backends (always quoted with
``psycopg.sql.Identifier`` as well), so their grammar is strict: a lower-case letter, then
lower-case letters, digits and ``_``.  Metadata keys appear in queries (``meta.<key>``), so a key
a query cannot name cannot be stored either.
"""

from __future__ import annotations

from platformsite.api.validators import Name

DATABASE = Name(
    r"[a-z][a-z0-9_]{0,47}", "a lower-case letter, then lower-case letters, digits and _ (up to 48)"
)
TABLE = DATABASE
#: Names a database may not take: the API's own path segments.
RESERVED = frozenset({"databases", "policies", "changes"})
RECORD_ID = Name(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}", "letters, digits and _.:@- (up to 128)")
META_KEY = Name(r"[A-Za-z0-9_:-]{1,64}", "letters, digits, _, : and - (up to 64)")
#: A segment of a ``data->a->b`` path.
DATA_KEY = Name(r"[A-Za-z0-9_-]{1,64}", "letters, digits, _ and - (up to 64)")
#: Most metadata entries of a record, and the longest value.
MAX_META_ENTRIES = 64
MAX_META_VALUE = 1024
#: Deepest ``data->`` path a query may name.
MAX_PATH_DEPTH = 8
