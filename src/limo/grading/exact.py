"""An exact rational evaluator for answers: integers, decimals, `\\frac`, `+ - * / ^`, `!`, brackets.

    exact_value("\\frac{1}{2004!}")   # (Fraction(1, 2004!), False)
    exact_value("025")                # (Fraction(25), False): AIME leading zeros are the same number

A small recursive-descent parser; model text is never evaluated as code. Sizes are bounded (bits, exponents,
factorials), and anything outside the grammar returns None so the caller falls back to math-verify.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

_MAX_BITS = 200_000  # larger intermediate values: give up (fall back to math-verify, under the hard timeout)
_MAX_FACTORIAL = 10_000


class _NotExact(Exception):
    pass


class _ExactParser:
    """Recursive descent over + - * / ^ ! ( ) {} \\frac, integers and decimals. Anything else: _NotExact.

    Produces a Fraction; never calls eval. `decimal` records whether a non-integer decimal literal was seen.
    """

    _TOKEN = re.compile(r"\s*(\d+\.\d*|\.\d+|\d+|\\frac|\\cdot|\\times|\\div|[-+*/^!(){}])")

    def __init__(self, s: str):
        self.tokens: list[str] = []
        pos = 0
        s = s.strip()
        while pos < len(s):
            m = self._TOKEN.match(s, pos)
            if not m:
                raise _NotExact(s[pos:])
            self.tokens.append(m.group(1))
            pos = m.end()
            while pos < len(s) and s[pos].isspace():
                pos += 1
        self.i = 0
        self.decimal = False

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise _NotExact(f"expected {expected}")
        self.i += 1
        return tok

    def parse(self) -> Fraction:
        if not self.tokens:
            raise _NotExact("empty")
        value = self.expr()
        if self.peek() is not None:
            raise _NotExact("trailing")
        return value

    def expr(self) -> Fraction:
        value = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            rhs = self.term()
            value = value + rhs if op == "+" else value - rhs
            self._check(value)
        return value

    def term(self) -> Fraction:
        value = self.unary()
        while self.peek() in ("*", "/", "\\cdot", "\\times", "\\div"):
            op = self.take()
            rhs = self.unary()
            if op in ("/", "\\div"):
                if rhs == 0:
                    raise _NotExact("division by zero")
                value = value / rhs
            else:
                value = value * rhs
            self._check(value)
        return value

    def unary(self) -> Fraction:
        if self.peek() == "-":
            self.take()
            return -self.unary()
        if self.peek() == "+":
            self.take()
            return self.unary()
        return self.power()

    def power(self) -> Fraction:
        base = self.postfix()
        if self.peek() == "^":
            self.take()
            exp = self.unary() if self.peek() != "{" else self.group()
            if exp.denominator != 1:
                raise _NotExact("non-integer exponent")
            e = int(exp)
            if abs(e) > 100_000:
                raise _NotExact("exponent too large")
            if base == 0 and e < 0:
                raise _NotExact("zero to negative power")
            bits = max(abs(base.numerator), abs(base.denominator)).bit_length()
            if bits * abs(e) > _MAX_BITS:
                raise _NotExact("power too large")
            base = base**e
        return base

    def postfix(self) -> Fraction:
        value = self.atom()
        while self.peek() == "!":
            self.take()
            if value.denominator != 1 or value < 0 or value > _MAX_FACTORIAL:
                raise _NotExact("factorial")
            value = Fraction(math.factorial(int(value)))
        return value

    def group(self) -> Fraction:
        self.take("{")
        value = self.expr()
        self.take("}")
        return value

    def atom(self) -> Fraction:
        tok = self.peek()
        if tok is None:
            raise _NotExact("unexpected end")
        if tok == "(":
            self.take()
            value = self.expr()
            self.take(")")
            return value
        if tok == "{":
            return self.group()
        if tok == "\\frac":
            self.take()
            num = self._frac_arg()
            den = self._frac_arg()
            if den == 0:
                raise _NotExact("division by zero")
            return num / den
        if tok[0].isdigit() or tok[0] == ".":
            self.take()
            if "." in tok:
                if tok.rstrip("0").endswith(".") is False:
                    self.decimal = True
                return Fraction(tok)
            return Fraction(int(tok))
        raise _NotExact(tok)

    def _frac_arg(self) -> Fraction:
        if self.peek() == "{":
            return self.group()
        tok = self.take()
        if tok.isdigit():  # \frac12 -> the tokeniser read "12" as one number: split into digits
            if len(tok) == 1:
                return Fraction(int(tok))
            # put the remaining digits back as their own token
            self.tokens.insert(self.i, tok[1:])
            return Fraction(int(tok[0]))
        raise _NotExact("frac argument")

    @staticmethod
    def _check(value: Fraction) -> None:
        if value.numerator.bit_length() > _MAX_BITS or value.denominator.bit_length() > _MAX_BITS:
            raise _NotExact("too large")


def exact_value(s: str) -> tuple[Fraction, bool] | None:
    """(value, has_decimal_literal) if `s` (normalised) is an exact rational expression, else None."""
    if len(s) > 2000:
        return None
    try:
        p = _ExactParser(s)
        return p.parse(), p.decimal
    except (_NotExact, RecursionError, ValueError, ZeroDivisionError, OverflowError):
        return None
