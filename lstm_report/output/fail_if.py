"""``--fail-if EXPR``: alerts on a report's headline numbers, in a small grammar, never eval.

    expr       := conjunct ("or" conjunct)*
    conjunct   := negation ("and" negation)*
    negation   := "not" negation | "(" expr ")" | comparison
    comparison := value OP value              OP: < <= > >= == !=
    value      := NUMBER | NAME | NAME "[" (NAME | STRING) "]"

A NAME is one of QUANTITIES; ``importance[FEATURE]`` is an input's importance. Parsing
checks every name (a typo is a usage error before any model is read); evaluating
(output/alerts.py) reads the report's headline numbers. This module imports nothing
heavy: the CLI parses --fail-if before it loads any stage.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from lstm_report.errors import ExpressionError, quote

QUANTITIES: dict[str, str] = {
    "max_spectral_radius": "the largest spectral radius ρ(U_g) of any gate of any layer",
    "memory_tau": "the median forget-gate timescale τ in steps (on the probe, else at rest)",
    "memory_horizon": "how many of the last steps carry the answer on the probe "
    "(models[i].memory_horizon.steps; needs a probe)",
    "max_relative_change": "the largest ‖ΔA‖_F/‖A‖_F of any W_g or U_g in a comparison",
    "findings": "the number of findings",
    "errors": "the number of error findings",
    "warnings": "the number of warning findings",
    "models": "the number of models",
    "layers": "the number of recurrent layers",
    "lstm_params": "the number of parameters of the recurrent layers",
}
"""The quantities an expression may name, and what each is (docs/ci.md lists them)."""

INDEXED = {"importance": "an input's importance (occlusion on the probe, else weight norm)"}
"""Quantities that take an input feature's name: ``importance[pressure]``."""

MAX_EXPRESSION = 1000
"""Characters in one expression: a longer one is refused before it is parsed."""

MAX_DEPTH = 50
"""Nested parentheses and ``not`` at most this deep (the parser recurses)."""

OPERATORS = ("<", "<=", ">", ">=", "==", "!=")
KEYWORDS = ("and", "or", "not")

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<string>'[^']*'|"[^"]*")
    | (?P<op><=|>=|==|!=|<|>)
    | (?P<punct>[\[\]()])
    )""",
    re.VERBOSE,
)


def known() -> str:
    """The names an expression may use, for messages."""
    return ", ".join([*QUANTITIES, *(f"{k}[FEATURE]" for k in INDEXED)])


@dataclass(frozen=True)
class Number:
    """A number written in the expression."""

    value: float


@dataclass(frozen=True)
class Quantity:
    """A headline number the expression names (``importance[key]`` for an input's)."""

    name: str
    key: str | None = None
    """The feature of ``importance[key]``; None for a plain quantity."""

    def __str__(self) -> str:
        return self.name if self.key is None else f"{self.name}[{self.key}]"


Value = Number | Quantity


@dataclass(frozen=True)
class Relation:
    """``left OP right``: the one leaf of an expression."""

    left: Value
    op: str
    right: Value


@dataclass(frozen=True)
class Not:
    """``not item``."""

    item: Expr


@dataclass(frozen=True)
class Both:
    """``and`` (all=True) or ``or`` (all=False) of two or more items."""

    all: bool
    items: tuple[Expr, ...]


Expr = Relation | Not | Both


@dataclass(frozen=True)
class Condition:
    """One ``--fail-if``: its text as given and its parsed form."""

    text: str
    expr: Expr


@dataclass(frozen=True)
class _Tok:
    """One token: its kind, text and where it starts."""

    kind: str
    text: str
    at: int


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.lastgroup is None:
            start = len(text) - len(text[pos:].lstrip())
            raise ExpressionError(f"unexpected {quote(text[start])} at character {start + 1}")
        kind = m.lastgroup
        word, at = m.group(kind), m.start(kind)
        if kind == "name" and word in KEYWORDS:
            kind = "keyword"
        out.append(_Tok(kind, word, at))
        pos = m.end()
    return out


class _Parser:
    """Recursive descent over the tokens, one method per rule of the grammar."""

    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, kind: str, text: str | None = None) -> _Tok | None:
        t = self.peek()
        if t is not None and t.kind == kind and (text is None or t.text == text):
            self.i += 1
            return t
        return None

    def expect(self, what: str, kind: str, text: str | None = None) -> _Tok:
        t = self.take(kind, text)
        if t is None:
            got = self.peek()
            found = "the end" if got is None else f"{quote(got.text)} at character {got.at + 1}"
            raise ExpressionError(f"expected {what}, found {found}")
        return t

    def expr(self, depth: int) -> Expr:
        items = [self.conjunct(depth)]
        while self.take("keyword", "or"):
            items.append(self.conjunct(depth))
        return items[0] if len(items) == 1 else Both(False, tuple(items))

    def conjunct(self, depth: int) -> Expr:
        items = [self.negation(depth)]
        while self.take("keyword", "and"):
            items.append(self.negation(depth))
        return items[0] if len(items) == 1 else Both(True, tuple(items))

    def negation(self, depth: int) -> Expr:
        if depth > MAX_DEPTH:
            raise ExpressionError(f"nested more than {MAX_DEPTH} levels deep")
        if self.take("keyword", "not"):
            return Not(self.negation(depth + 1))
        if self.take("punct", "("):
            inner = self.expr(depth + 1)
            self.expect("')'", "punct", ")")
            return inner
        left = self.value()
        op = self.expect(f"a comparison ({' '.join(OPERATORS)})", "op").text
        return Relation(left, op, self.value())

    def value(self) -> Value:
        t = self.take("number")
        if t is not None:
            number = float(t.text)
            if not math.isfinite(number):
                raise ExpressionError(f"{t.text} is not a finite number")
            return Number(number)
        t = self.expect("a number or a quantity", "name")
        if t.text in INDEXED:
            self.expect(f"'[' after {t.text} (e.g. {t.text}[FEATURE])", "punct", "[")
            key = self.take("name") or self.take("string")
            if key is None:
                self.expect("a feature name", "name")
            assert key is not None
            self.expect("']'", "punct", "]")
            name = key.text[1:-1] if key.kind == "string" else key.text
            return Quantity(t.text, name)
        if t.text not in QUANTITIES:
            raise ExpressionError(f"unknown quantity {quote(t.text)} (known: {known()})")
        return Quantity(t.text)


def parse(text: str) -> Condition:
    """The condition ``text`` states; ExpressionError if it is not one (the message says
    where, and lists the known quantities for an unknown one)."""
    if len(text) > MAX_EXPRESSION:
        raise ExpressionError(
            f"--fail-if: the expression has {len(text):,} characters; at most "
            f"{MAX_EXPRESSION:,} are read"
        )
    try:
        p = _Parser(text)
        if not p.toks:
            raise ExpressionError("the expression is empty")
        expr = p.expr(0)
        extra = p.peek()
        if extra is not None:
            raise ExpressionError(f"unexpected {quote(extra.text)} at character {extra.at + 1}")
    except ExpressionError as exc:
        raise ExpressionError(f"--fail-if {quote(text)}: {exc}") from None
    return Condition(text, expr)
