"""Row policies' conditions: boolean expressions over a record's fields and the caller's token.

``metadata.owner == $token.sub``, ``data.total > 100 and not (metadata.state == 'closed')``,
``metadata.team == $token.account or metadata.public == 'yes'``.  Operands are record fields
(``id``, ``created``, ``updated``, ``version``, ``metadata.<key>``, ``data.<path>``), literals
(``'text'``, ``"text"``, numbers, ``true``, ``false``, ``null``) and the token's claims
(``$token.sub``, ``$token.client_id``, ``$token.account``); ``== != < <= > >=``, ``and``, ``or``,
``not`` and parentheses.  A condition compiles to the same tree as a query (:mod:`.ast`), with
the claims filled in per request, so the database filters rows by it.
"""

from __future__ import annotations

import re
from typing import Any

from dbproxy_app import names
from dbproxy_app.query.ast import Cond, Field, Group
from dbproxy_app.query.grammar import _datetime, number_problem, printable
from platformsite.api.errors import Invalid
from platformsite.jsonvalues import unstorable

CLAIMS = ("sub", "client_id", "account")
_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")|(?P<num>-?\d+(?:\.\d+)?)"
    r"|(?P<op>==|!=|<=|>=|<|>|\(|\))|(?P<word>\$?[A-Za-z_][A-Za-z0-9_.:-]*))"
)
_SWAP = {"eq": "eq", "neq": "neq", "gt": "lt", "gte": "lte", "lt": "gt", "lte": "gte"}
_OPS = {"==": "eq", "!=": "neq", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}
_MAX_LENGTH = 2000


def _fail(condition: str, term: str, why: str) -> Invalid:
    term, condition = printable(term[:60]), printable(condition[:200])
    return Invalid(
        f"Cannot read {term!r} in the condition: {why}.",
        code="invalid_condition",
        details={"condition": condition, "term": term},
    )


def _tokens(text: str) -> list[tuple[str, str]]:
    out, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if not match:
            raise _fail(text, text[position:].strip()[:20], "unexpected characters")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        position = match.end()
    return out


class _Parser:
    def __init__(self, text: str, claims: dict[str, str]) -> None:
        if len(text) > _MAX_LENGTH:
            raise _fail(text, text[:20], f"conditions are at most {_MAX_LENGTH} characters")
        self.text, self.claims, self.items, self.position = text, claims, _tokens(text), 0

    def peek(self) -> tuple[str, str] | None:
        return self.items[self.position] if self.position < len(self.items) else None

    def take(self) -> tuple[str, str]:
        item = self.peek()
        if item is None:
            raise _fail(self.text, "(end)", "the condition ends too soon")
        self.position += 1
        return item

    def parse(self) -> Group:
        node = self.disjunction(0)
        if self.peek() is not None:
            raise _fail(self.text, self.peek()[1], "expected and, or or the end")
        return node if isinstance(node, Group) else Group("and", (node,))

    def disjunction(self, depth: int) -> Any:
        if depth > 16:
            raise _fail(self.text, "(", "nested too deep")
        items = [self.conjunction(depth)]
        while self.peek() == ("word", "or"):
            self.take()
            items.append(self.conjunction(depth))
        return items[0] if len(items) == 1 else Group("or", tuple(items))

    def conjunction(self, depth: int) -> Any:
        items = [self.negation(depth)]
        while self.peek() == ("word", "and"):
            self.take()
            items.append(self.negation(depth))
        return items[0] if len(items) == 1 else Group("and", tuple(items))

    def negation(self, depth: int) -> Any:
        if self.peek() == ("word", "not"):
            self.take()
            inner = self.negation(depth)
            return Group("and", (inner,), negate=True)
        if self.peek() == ("op", "("):
            self.take()
            node = self.disjunction(depth + 1)
            if self.take() != ("op", ")"):
                raise _fail(self.text, ")", "a parenthesis is not closed")
            return node
        return self.comparison()

    def operand(self) -> tuple[str, Any]:
        kind, text = self.take()
        if kind == "str":
            return "value", re.sub(r"\\(.)", r"\1", text[1:-1])
        if kind == "num":
            number = float(text) if "." in text else int(text)
            problem = number_problem(number)
            if problem:
                raise _fail(self.text, text, problem)
            return "value", number
        if kind == "word":
            if text in ("true", "false"):
                return "value", text == "true"
            if text == "null":
                return "value", None
            if text.startswith("$token."):
                claim = text[7:]
                if claim not in CLAIMS:
                    raise _fail(
                        self.text, text, f"token claims are {', '.join('$token.' + c for c in CLAIMS)}"
                    )
                return "value", self.claims.get(claim, "")
            return "field", self.field(text)
        raise _fail(self.text, text, "expected a field, a literal or a $token claim")

    def field(self, text: str) -> Field:
        if text in ("id", "created", "updated", "version"):
            return Field(text)
        head, _, rest = text.partition(".")
        if head in ("metadata", "meta") and names.META_KEY.matches(rest):
            return Field("meta", key=rest)
        if head == "data" and rest:
            path = tuple(rest.split("."))
            if len(path) <= names.MAX_PATH_DEPTH and all(names.DATA_KEY.matches(step) for step in path):
                return Field("data", path=path, text=False)
        raise _fail(
            self.text, text, "fields are id, created, updated, version, metadata.<key> and data.<path>"
        )

    def comparison(self) -> Cond:
        left = self.operand()
        kind, op_text = self.take()
        if kind != "op" or op_text not in _OPS:
            raise _fail(self.text, op_text, "expected == != < <= > or >=")
        right = self.operand()
        op = _OPS[op_text]
        if left[0] != "field":
            left, right, op = right, left, _SWAP[op]
        if left[0] != "field" or right[0] != "value":
            raise _fail(self.text, op_text, "a comparison is between a field and a value")
        return _condition(self.text, left[1], op, right[1])


def _condition(text: str, field: Field, op: str, value: Any) -> Cond:
    if unstorable(value, max_depth=2):
        raise _fail(text, str(value), "literals may not contain NUL characters or lone surrogates")
    if value is None:
        if op not in ("eq", "neq"):
            raise _fail(text, "null", "null compares with == or != only")
        return Cond(field, "is", None, negate=op == "neq")
    if field.kind in ("created", "updated"):
        try:
            value = _datetime(str(value), "condition")
        except Invalid:
            raise _fail(
                text, str(value), f"{field.kind} compares with a date and time in years 1 to 9999 (UTC)"
            ) from None
    elif field.kind == "version":
        if not isinstance(value, int) or isinstance(value, bool):
            raise _fail(text, str(value), "version compares with an integer")
    elif field.kind in ("meta", "id"):
        if not isinstance(value, str):
            raise _fail(text, str(value), f"{field.label} compares with text")
    elif op in ("gt", "gte", "lt", "lte") and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise _fail(text, str(value), "< <= > >= on data compare with numbers")
    return Cond(field, op, value)


def compile_condition(text: str, claims: dict[str, str]) -> Group:
    """The condition as a query tree, the token's ``claims`` filled in (400 if it does not parse)."""
    return _Parser(text, claims).parse()


def check_condition(text: str) -> None:
    compile_condition(text, {claim: "" for claim in CLAIMS})
