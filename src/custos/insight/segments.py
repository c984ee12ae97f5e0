"""Rule-based segments: a small, safe condition language evaluated on profile rows.

``country = 'DE' and age < 35``, ``mood < -0.2 or interactions_30d >= 3``,
``city in ('Berlin', 'Hamburg') and not consent_marketing``. Never SQL: the rule is parsed into
a tree and evaluated in Python against one row (a dict of golden attributes and insight fields),
so a rule cannot read or change anything else. Unknown fields are an error naming the field and
the fields there are.

Grammar::

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | atom
    atom    := "(" expr ")" | compare
    compare := FIELD (OP value | "in" "(" value ("," value)* ")" | "is" ["not"] "null")?
    OP      := = | != | < | <= | > | >=
    value   := 'text' | "text" | number | true | false
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from custos.core.errors import InputError

_TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+(?:\.\d+)?)|(?P<str>'(?:[^']|'')*'|\"[^\"]*\")|(?P<op><=|>=|!=|<>|=|<|>)"
    r"|(?P<punct>[(),])|(?P<word>[A-Za-z_][A-Za-z0-9_]*))"
)
_KEYWORDS = {"and", "or", "not", "in", "is", "null", "true", "false"}

Row = Mapping[str, Any]
Predicate = Callable[[Row], bool]


@dataclass(frozen=True)
class Segment:
    """A named rule, parsed."""

    name: str
    where: str
    fields: frozenset[str]
    test: Predicate


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise InputError(
                f"cannot read the rule at character {pos + 1}: {text[pos : pos + 12]!r}",
                hint="e.g. --where \"country = 'DE' and age < 35\"",
            )
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "word" and value.lower() in _KEYWORDS:
            kind, value = "kw", value.lower()
        out.append((kind, value))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str, known: frozenset[str] | None) -> None:
        self.tokens = _tokens(text)
        self.i = 0
        self.known = known
        self.fields: set[str] = set()

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("end", "")

    def take(self, kind: str, value: str | None = None) -> str:
        k, v = self.peek()
        if k != kind or (value is not None and v != value):
            want = value or kind
            raise InputError(
                f"expected {want} but found {v or 'the end'!r} in the rule",
                hint="conditions look like: field = 'text', field < 3, field in ('a', 'b')",
            )
        self.i += 1
        return v

    def parse(self) -> Predicate:
        test = self.or_()
        if self.peek()[0] != "end":
            raise InputError(f"unexpected {self.peek()[1]!r} in the rule", hint="join with and/or")
        return test

    def or_(self) -> Predicate:
        return self._joined("or", self.and_, any)

    def and_(self) -> Predicate:
        return self._joined("and", self.not_, all)

    def _joined(
        self,
        word: str,
        operand: Callable[[], Predicate],
        combine: Callable[[Iterable[object]], bool],
    ) -> Predicate:
        """``operand`` once, or several joined by ``word``: true when ``combine`` of theirs is."""
        parts = [operand()]
        while self.peek() == ("kw", word):
            self.i += 1
            parts.append(operand())
        return parts[0] if len(parts) == 1 else (lambda row: combine(p(row) for p in parts))

    def not_(self) -> Predicate:
        if self.peek() == ("kw", "not"):
            self.i += 1
            inner = self.not_()
            return lambda row: not inner(row)
        if self.peek() == ("punct", "("):
            self.i += 1
            inner = self.or_()
            self.take("punct", ")")
            return inner
        return self.compare()

    def value(self) -> Any:
        kind, v = self.peek()
        self.i += 1
        if kind == "num":
            return float(v)
        if kind == "str":
            return v[1:-1].replace("''", "'") if v[0] == "'" else v[1:-1]
        if kind == "kw" and v in ("true", "false"):
            return v == "true"
        raise InputError(f"expected a value but found {v or 'the end'!r} in the rule")

    def compare(self) -> Predicate:
        name = self.take("word")
        if self.known is not None and name not in self.known:
            raise InputError(
                f"unknown field {name!r} in the rule",
                hint="fields: " + ", ".join(sorted(self.known)),
            )
        self.fields.add(name)
        kind, op = self.peek()
        if kind == "op":
            self.i += 1
            value = self.value()
            return _comparison(name, "!=" if op == "<>" else op, value)
        if (kind, op) == ("kw", "in"):
            self.i += 1
            self.take("punct", "(")
            values = [self.value()]
            while self.peek() == ("punct", ","):
                self.i += 1
                values.append(self.value())
            self.take("punct", ")")
            wanted = {_norm(v) for v in values}
            return lambda row: _norm(row.get(name)) in wanted
        if (kind, op) == ("kw", "is"):
            self.i += 1
            negate = self.peek() == ("kw", "not")
            if negate:
                self.i += 1
            self.take("kw", "null")
            return lambda row: (row.get(name) is None) != negate
        return lambda row: bool(row.get(name))  # a bare field: true when set and truthy


def _norm(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value.casefold()
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    return value


def _comparison(name: str, op: str, value: Any) -> Predicate:
    want = _norm(value)

    def test(row: Row) -> bool:
        have = _norm(row.get(name))
        if have is None:
            return False  # unknown never satisfies a comparison (as in SQL)
        if op in ("=", "!="):
            return bool(have == want) == (op == "=")
        if type(have) is not type(want):
            return False
        if op == "<":
            return bool(have < want)
        if op == "<=":
            return bool(have <= want)
        if op == ">":
            return bool(have > want)
        return bool(have >= want)

    return test


def parse(name: str, where: str, known: frozenset[str] | None = None) -> Segment:
    """Parse a rule; ``known`` restricts the fields it may name (unknown ones are an error)."""
    if not where.strip():
        raise InputError("the rule is empty", hint="e.g. --where \"country = 'DE'\"")
    parser = _Parser(where, known)
    test = parser.parse()
    return Segment(name, where, frozenset(parser.fields), test)
