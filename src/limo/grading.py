"""Answer grading shared by difficulty sampling, solution verification and evaluation.

    from limo.grading import grade, grade_many, extract_answer
    grade("... so the answer is \\boxed{025}", "25").verdict          # 'correct'
    grade_many([(response, gold), ...], timeout_s=5.0, workers=2)    # order preserved

Command line: `limo grade IN.jsonl -o OUT.jsonl` (rows with `response` and `answer`).

How an item is graded (all inside a worker process):
1. `extract_answer`: the last closed `\\boxed{...}` / `\\fbox{...}` (brace matching, escaped braces skipped, brace-less
   `\\boxed 5` too), else a "final answer is ..." phrase, else a multiple-choice letter ("answer is (B)").
2. Cheap exact checks first (most items end here): normalised string equality (`\\text{}`, units, `^\\circ`, `\\%`,
   `\\left`, `\\dfrac`, `x =` ...), multiple-choice letters against a letter gold, and an exact rational evaluator
   (integers, decimals, fractions, `+-*/^`, factorials) so `025` equals `25` and `1/2004!` is NOT `1/2006!`
   (math-verify compares those as floats and accepts them). Comma-separated multi-part answers match part by part.
3. Otherwise math-verify (`parse` + `verify`), with a guard that two exact rationals must be equal.

Model text is never evaluated as code: our evaluator is a small recursive-descent parser over numbers and operators,
and math-verify's LaTeX parsing runs only inside worker processes. Each item has a hard wall-clock timeout: a worker
stuck on one item longer than `timeout_s` is killed and replaced, the item gets verdict `timeout` (a worker that
crashes on an item also yields `timeout`), and the rest of its chunk is resubmitted. Items travel to the workers in
chunks to cut IPC overhead; a worker reports after every item, which is what the per-item clock measures.
"""

from __future__ import annotations

import atexit
import logging
import math
import multiprocessing as mp
import multiprocessing.connection
import os
import re
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

Verdict = Literal["correct", "incorrect", "no_answer", "timeout"]
VERDICTS: tuple[str, ...] = ("correct", "incorrect", "no_answer", "timeout")


@dataclass(frozen=True)
class GradeResult:
    verdict: Verdict
    extracted: str | None

    @property
    def correct(self) -> bool:
        return self.verdict == "correct"

    def to_dict(self) -> dict:
        return {"correct": self.correct, "verdict": self.verdict, "extracted": self.extracted}


# ----------------------------------------------------------------------------------------------- extraction

_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_MAX_BOX_CANDIDATES = 20  # only the last few boxes are tried, so many unclosed boxes cannot make extraction quadratic


def _read_braced(text: str, start: int) -> tuple[str, int] | None:
    """`text[start] == '{'`: the content up to the matching '}' (escaped braces `\\{ \\}` and `\\\\` skipped)."""
    depth = 0
    i = start
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
        i += 1
    return None


def _box_content(text: str, pos: int) -> str | None:
    """Content of the box command whose name ends at `pos`; None if unclosed or empty."""
    i = pos
    while i < len(text) and text[i] in " \t":
        i += 1
    if i >= len(text):
        return None
    if text[i] == "{":
        got = _read_braced(text, i)
        if got is None:
            return None
        content = got[0].strip()
        return content or None
    # brace-less form: `\boxed 5` or `\boxed5` -> up to whitespace or `$`
    m = re.match(r"[^\s$]+", text[i:])
    if not m:
        return None
    return m.group(0).rstrip(".,;") or None


def last_boxed(text: str) -> str | None:
    """Content of the last closed `\\boxed{}`/`\\fbox{}` in `text`."""
    starts = [m.end() for m in _BOX_RE.finditer(text)]
    for pos in reversed(starts[-_MAX_BOX_CANDIDATES:]):
        content = _box_content(text, pos)
        if content is not None:
            return content
    return None


_FINAL_RE = re.compile(
    r"(?:final\s+answer\s*(?:is|:|=)|最终答案\s*(?:是|为|:|：)|答案\s*(?:是|为|:|：))\s*[:：]?\s*(.+)", re.IGNORECASE
)
_LETTER_RE = re.compile(
    r"(?i:answer|option|choice)\s*(?i:is|:|should\s+be|would\s+be)?\s*(?i:option\s*)?[:：]?\s*"
    r"[\(（\[]?\s*([A-E])\s*[\)）\]]?(?![A-Za-z])"
    r"|(?:答案|选项|应选|选)\s*(?:是|为|选)?\s*[:：]?\s*[\(（\[]?\s*([A-E])(?![A-Za-z])"
)
_TAIL_CHARS = 3000  # phrases are searched in the end of the response only


def _clean_phrase(s: str) -> str | None:
    s = s.strip()
    m = re.fullmatch(r"\$+(.+?)\$+.*", s) or re.fullmatch(r"\\\((.+?)\\\).*", s) or re.fullmatch(r"\\\[(.+?)\\\].*", s)
    if m:
        s = m.group(1)
    s = s.strip().rstrip("。.").strip()
    s = s.strip("*").strip()
    return s or None


def extract_answer(text: str | None) -> str | None:
    """The final answer in a response: last box, else "final answer is ...", else a multiple-choice letter."""
    if not text:
        return None
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    tail = text[-_TAIL_CHARS:]
    phrases = [m for m in _FINAL_RE.finditer(tail)]
    if phrases:
        line = phrases[-1].group(1).split("\n")[0]
        cleaned = _clean_phrase(line)
        if cleaned:
            return cleaned
    letters = list(_LETTER_RE.finditer(tail))
    if letters:
        return letters[-1].group(1) or letters[-1].group(2)
    stripped = text.strip().strip("().*$ ")
    if re.fullmatch(r"[A-E]", stripped):
        return stripped
    return conclusion_answer(tail)


# The answer stated in prose in the last sentences of an unboxed response: "Therefore, the remainder is 0.",
# "So, the answer should be 1.", "I'm confident that 44 is the correct answer." Only a value at the END of such a
# sentence counts (a response cut off mid-computation has no concluding sentence and stays `no_answer`).
_VALUE = r"(\\\(.+?\\\)|\$[^$\n]{1,80}\$|-?\\?\$?\d[\d,]*(?:\.\d+)?%?|-?\.\d+)"
_CONCLUDE_IS = re.compile(
    r"(?i:(?:\b(?:is|are|be|equals|was|has|have|at|with)|=)\s+(?:indeed\s+|exactly\s+|simply\s+|still\s+|just\s+)?"
    r"(?:equal\s+to\s+)?)" + _VALUE + r"(?:\\\)|\$)?(?:\s*(?:[a-zA-Z%°²³]+)){0,3}\s*[.!]?\s*$"
)
_CONCLUDE_VALUE_IS = re.compile(
    _VALUE + r"(?:\s+[a-zA-Z]+){0,2}\s+(?i:is|as)\s+(?i:the|indeed\s+the)\s+(?i:correct|right|final)\b"
)
_CONCLUDE_CUE = re.compile(
    r"(?i)\b(?:therefore|thus|hence|so|answer|conclusion|confident|result|final|in\s+total|overall)\b|^The\s"
)
_FILLER = re.compile(r"(?i)^(?:i think|i'm|i am|everything|yes|that|this|so,? i)\b[^0-9$\\]*$")


_END_MARKERS = re.compile(r"<\|end_of_(?:solution|thought)\|>|<\|im_end\|>|</s>")


def conclusion_answer(tail: str) -> str | None:
    """The value a concluding sentence states, from the last 3 non-empty lines.

    Filler ("I think that's the answer.") and finished sentences without any digit are skipped; a display line
    (`$$\\tan A = 2$$`) counts when the sentence before it carries the cue ("In conclusion, we have: ...").
    """
    tail = _END_MARKERS.sub("", tail)
    lines = [ln.strip() for ln in tail.split("\n") if ln.strip()][-3:]
    sentences: list[str] = []
    for ln in lines:
        display = re.fullmatch(r"\$\$(.+)\$\$|\\\[(.+)\\\]", ln)
        if display:
            sentences.append((display.group(1) or display.group(2)).strip())
            continue
        sentences.extend(s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", ln) if s.strip())
    sentences = sentences[-5:]
    for i in range(len(sentences) - 1, -1, -1):
        sent = sentences[i].strip()
        if _FILLER.match(sent):
            continue
        if sent[-1:] in ".!?" and not re.search(r"\d", sent):
            continue  # a finished remark without a number ("It checks out.")
        previous = sentences[i - 1] if i > 0 else ""
        if not (_CONCLUDE_CUE.search(sent) or _CONCLUDE_CUE.search(previous)):
            return None
        m = _CONCLUDE_IS.search(sent) or _CONCLUDE_VALUE_IS.search(sent)
        if not m:
            return None
        value = m.group(1).strip()
        if value.startswith("\\(") and value.endswith("\\)"):
            value = value[2:-2].strip()
        value = value.strip("$").strip()
        value = value.rstrip(",")
        return value or None
    return None


# ----------------------------------------------------------------------------------------------- normalisation

_TEXT_CMDS = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mathit|mbox|operatorname|rm)\s*\{([^{}]*)\}")
_SPACING = re.compile(r"\\[,;:! ]|\\quad|\\qquad|~")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree|\^\s*\{\s*\\text\{\s*o\s*\}\s*\}")
_UNIT_WORDS = (
    "cm|mm|km|m|meters?|centimeters?|inches|inch|in|feet|foot|ft|units?|square units|sq units|degrees?|dollars?|"
    "cents?|hours?|minutes?|seconds?|days?|years?|mph|miles?|pounds?|kg|g|grams?|liters?|ml|l|s|h|min"
)
_UNIT_TAIL = re.compile(rf"^(.*?\d)\s*(?:\\?\s*)?(?:(?:square|cubic|sq)\s+)?(?:{_UNIT_WORDS})(?:\^?\{{?[23]\}}?)?\.?$")
_VAR_PREFIX = re.compile(r"^[a-zA-Z](?:_\{?\w+\}?)?\s*=\s*(?=[^=])")


def _unwrap_box(s: str) -> str:
    for _ in range(5):
        m = re.fullmatch(r"\s*\\(?:boxed|fbox)\s*\{(.*)\}\s*", s, re.S)
        if not m:
            break
        s = m.group(1)
    return s


def normalize(s: str, *, strip_var: bool = True) -> str:
    """A canonical string form of an answer for cheap exact comparison."""
    s = s.strip()
    s = _unwrap_box(s)
    s = s.replace("\\displaystyle", "")
    for _ in range(3):
        s = s.strip()
        if len(s) >= 2 and s[0] == "$" and s[-1] == "$":
            s = s.strip("$")
        elif s.startswith("\\(") and s.endswith("\\)"):
            s = s[2:-2]
        elif s.startswith("\\[") and s.endswith("\\]"):
            s = s[2:-2]
    s = s.replace("\\$", "").replace("$", "")
    for _ in range(3):
        s = _TEXT_CMDS.sub(r"\1", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\left", "").replace("\\right", "")
    s = s.replace("\\le ", "\\leq ").replace("\\ge ", "\\geq ").replace("\\neq", "\\ne")
    s = _DEGREES.sub("", s)
    s = s.replace("\\%", "").replace("%", "").replace("\\$", "")
    s = _SPACING.sub(" ", s)
    s = s.replace("\\cdot", "*").replace("\\times", "*")
    s = s.strip().rstrip(".。").strip()
    if strip_var:
        s = _VAR_PREFIX.sub("", s)
    m = _UNIT_TAIL.match(s)
    if m:
        s = m.group(1)
    s = re.sub(r"\s+", "", s)
    # thousands separators in a plain number: 1,000,000 -> 1000000
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", s):
        s = s.replace(",", "")
    if re.fullmatch(r"-?\d{1,3}(?:\\!?,\d{3})+", s):
        s = re.sub(r"\\!?,", "", s)
    return s


# ----------------------------------------------------------------------------------------------- exact rationals

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


# ----------------------------------------------------------------------------------------------- comparison

_MC_GOLD = re.compile(r"^[\(（\[]?\s*([A-E])\s*[\)）\]]?(?:\s*[.:：、．]\s*(.*))?$", re.S)
_MC_PRED = re.compile(r"^[\(（\[]?\s*([A-E])\s*[\)）\]]?(?:$|\s*[.:：、．]|\s+)", re.S)


def _mc_letter(s: str) -> str | None:
    t = normalize(s, strip_var=False) if s else ""
    m = _MC_PRED.match(t) or _MC_PRED.match(s.strip().strip("$"))
    return m.group(1) if m else None


def _split_top_level(s: str) -> list[str]:
    """Split on commas (and `\\text{ and }`-style 'and') outside brackets."""
    parts, depth, cur = [], 0, []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and s[i + 1] in "{}":
            cur.append(s[i : i + 2])
            depth += 1 if s[i + 1] == "{" else -1
            i += 2
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _strip_dollars_parts(s: str) -> str:
    return s.replace("$", "")


def _is_wrapped(s: str) -> bool:
    s = s.strip()
    return len(s) >= 2 and s[0] in "([{" and s[-1] in ")]}"


def cheap_verdict(pred: str, gold: str) -> bool | None:
    """True/False when exact checks decide, None when math-verify must look."""
    # multiple choice: a letter gold ("B", "(B)", "C. {x | ...}")
    mg = _MC_GOLD.match(gold.strip().strip("$"))
    if mg:
        letter = _mc_letter(pred)
        if letter is not None:
            return letter == mg.group(1)
        if mg.group(2):  # gaokao-style "C. option text": compare the option text
            return cheap_verdict(pred, mg.group(2))
        return False
    gold_has_eq = "=" in gold
    ng = normalize(gold, strip_var=not gold_has_eq)
    np_ = normalize(pred, strip_var=not gold_has_eq)
    if not np_:
        return False
    if np_ == ng or np_.lower() == ng.lower():
        return True
    eg, ep = exact_value(ng), exact_value(np_)
    if eg is not None and ep is not None:
        (vg, dg), (vp, dp) = eg, ep
        if vg == vp:
            return True
        if dg or dp:  # a decimal literal is involved: relative tolerance (Qwen2.5-Math math_equal uses 1e-4)
            return math.isclose(float(vg), float(vp), rel_tol=1e-4, abs_tol=1e-9)
        return False
    # multi-part answers ("69, 84", "$69$,$84$"): part by part, in order or as a multiset
    if not _is_wrapped(ng):
        gparts = _split_top_level(_strip_dollars_parts(gold))
        pparts = _split_top_level(_strip_dollars_parts(pred))
        if len(gparts) > 1 and len(pparts) == len(gparts):
            return _match_parts(pparts, gparts)
    return None


def _match_parts(pparts: list[str], gparts: list[str]) -> bool | None:
    """Every gold part matched by a distinct predicted part (order-insensitive). None if a part is undecided."""
    remaining = list(pparts)
    for g in gparts:
        hit = None
        for j, p in enumerate(remaining):
            v = cheap_verdict(p, g)
            if v is None:
                v = _math_verify(p, g)
            if v:
                hit = j
                break
        if hit is None:
            return False
        remaining.pop(hit)
    return True


_MV = None


def _mv():
    global _MV
    if _MV is None:
        logging.getLogger("math_verify").setLevel(logging.ERROR)
        import math_verify

        _MV = math_verify
    return _MV


def _wrap_latex(s: str) -> str:
    s = s.strip()
    if "$" in s or s.startswith("\\(") or s.startswith("\\["):
        return s
    return f"${s}$"


def _math_verify(pred: str, gold: str) -> bool:
    mv = _mv()
    g = mv.parse(_wrap_latex(gold), parsing_timeout=None)
    p = mv.parse(_wrap_latex(pred), parsing_timeout=None)
    if not g or not p:
        return False
    ok = mv.verify(g, p, timeout_seconds=None)
    if ok and _rational_mismatch(g[0], p[0]):
        return False  # math-verify compares e.g. 1/2004! and 1/2006! as floats; exact rationals must be equal
    if ok and _numeric_equation_mismatch(g[0], p[0]):
        return False  # two true numeric equations ("539 = 7^2*11", "360 = 2^3*3^2*5") are different answers
    return bool(ok)


def _numeric_equation_mismatch(a, b) -> bool:
    """Both are equations without variables: math-verify compares lhs - rhs (0 = 0); we compare the sides."""
    try:
        from sympy.core.relational import Relational
        from sympy.logic.boolalg import BooleanAtom

        if isinstance(a, BooleanAtom) or isinstance(b, BooleanAtom):
            return True
        if isinstance(a, Relational) and isinstance(b, Relational) and not (a.free_symbols or b.free_symbols):
            return not ((a.lhs - b.lhs).equals(0) and (a.rhs - b.rhs).equals(0))
    except Exception:
        return False
    return False


def _rational_mismatch(a, b) -> bool:
    try:
        import sympy

        if isinstance(a, sympy.Basic) and isinstance(b, sympy.Basic):
            if a.is_Rational and b.is_Rational and a.is_number and b.is_number:
                return bool(a != b)
    except Exception:
        return False
    return False


def judge(response: str | None, gold: str | None) -> tuple[str, str | None]:
    """(verdict, extracted) for one item, in-process and without a timeout. Used by the workers."""
    extracted = extract_answer(response or "")
    if extracted is None:
        return "no_answer", None
    if gold is None or not str(gold).strip():
        return "incorrect", extracted
    gold = str(gold)
    verdict = cheap_verdict(extracted, gold)
    if verdict is None:
        try:
            verdict = _math_verify(extracted, gold)
        except Exception:
            verdict = False
    return ("correct" if verdict else "incorrect"), extracted


# ----------------------------------------------------------------------------------------------- worker pool


def _worker_main(conn) -> None:
    """Worker loop: receive a chunk [(idx, response, gold), ...], send (idx, verdict, extracted) per item."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    _mv()  # import math-verify/sympy before reporting ready, so the first item's clock does not pay for it
    conn.send(("ready",))
    while True:
        try:
            chunk = conn.recv()
        except (EOFError, OSError):
            return
        if chunk is None:
            return
        for idx, response, gold in chunk:
            try:
                verdict, extracted = judge(response, gold)
            except Exception:  # RecursionError, sympy internals: an answer we cannot grade is not correct
                verdict, extracted = "incorrect", _safe_extract(response)
            if extracted is not None and len(extracted) > 2000:
                extracted = extracted[:2000]
            conn.send((idx, verdict, extracted))


def _worker_entry(fd: int) -> None:
    """`python -c` entry of a worker process: talk over the inherited socket `fd`."""
    _worker_main(multiprocessing.connection.Connection(fd))


class _Worker:
    """One grading process started with subprocess (not multiprocessing: no re-import of the caller's __main__,
    no fork of a parent that holds threads). It talks over a socketpair; EOF on it means the process died."""

    def __init__(self):
        parent, child = mp.Pipe()
        env = dict(os.environ)
        src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        code = "import sys; from limo.grading import _worker_entry; _worker_entry(int(sys.argv[1]))"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, str(child.fileno())],
            pass_fds=(child.fileno(),),
            stdin=subprocess.DEVNULL,
            env=env,
        )
        child.close()
        self.conn = parent
        self.ready = False
        self.pending: deque[int] = deque()
        self.since = 0.0

    def send(self, chunk: list[tuple[int, str, str]]) -> None:
        self.pending = deque(idx for idx, _, _ in chunk)
        self.since = time.monotonic()
        self.conn.send(chunk)

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(5)
        except Exception:
            pass
        try:
            self.conn.close()
        except Exception:
            pass

    def close(self) -> None:
        try:
            self.conn.send(None)
            self.proc.wait(1)
        except Exception:
            pass
        if self.proc.poll() is None:
            self.kill()
        else:
            self.conn.close()


class GradingPool:
    """Worker processes with a hard per-item wall-clock timeout. Reused across calls (see `grade_many`)."""

    def __init__(self, workers: int):
        self.size = max(1, workers)
        self.workers: list[_Worker] = []
        self.pid = os.getpid()
        self.restarts = 0

    def _ensure(self, n: int) -> None:
        while len(self.workers) < n:
            self.workers.append(_Worker())

    def close(self) -> None:
        for w in self.workers:
            w.close()
        self.workers = []

    def grade_many(
        self,
        items: Sequence[tuple[str | None, str | None]],
        timeout_s: float = 5.0,
        progress: Callable[[int], None] | None = None,
        chunk_size: int | None = None,
    ) -> list[GradeResult]:
        n = len(items)
        if n == 0:
            return []
        nworkers = min(self.size, n)
        self._ensure(nworkers)
        if chunk_size is None:
            chunk_size = max(1, min(32, n // (nworkers * 4) or 1))
        queue: deque[list[int]] = deque(list(range(i, min(i + chunk_size, n))) for i in range(0, n, chunk_size))
        results: list[GradeResult | None] = [None] * n
        done = 0
        active = self.workers[:nworkers]
        busy: dict[int, _Worker] = {}  # position in `active` -> worker with pending items

        def payload(idxs: list[int]) -> list[tuple[int, str, str]]:
            return [(i, items[i][0] or "", "" if items[i][1] is None else str(items[i][1])) for i in idxs]

        def replace(pos: int) -> None:
            active[pos].kill()
            self.restarts += 1
            fresh = _Worker()
            self.workers[self.workers.index(active[pos])] = fresh
            active[pos] = fresh

        while done < n:
            for pos, w in enumerate(active):
                if pos not in busy and queue:
                    idxs = queue.popleft()
                    try:
                        w.send(payload(idxs))
                    except (BrokenPipeError, OSError):
                        queue.appendleft(idxs)
                        replace(pos)
                        continue
                    busy[pos] = w
            now = time.monotonic()
            # a worker still importing (not ready) gets its clock started when it says ready
            deadlines = [w.since + timeout_s - now for w in busy.values() if w.ready]
            wait_for = max(0.0, min(deadlines)) if deadlines else timeout_s
            multiprocessing.connection.wait([w.conn for w in busy.values()], timeout=wait_for + 0.01)
            for pos in list(busy):
                w = busy[pos]
                dead = False
                try:
                    while w.pending and w.conn.poll():
                        msg = w.conn.recv()
                        w.since = time.monotonic()
                        if msg[0] == "ready":
                            w.ready = True
                            continue
                        idx, verdict, extracted = msg
                        results[idx] = GradeResult(verdict, extracted)
                        w.pending.popleft()
                        done += 1
                        if progress:
                            progress(1)
                except (EOFError, OSError):
                    dead = True
                if not w.pending:
                    del busy[pos]
                    continue
                if not w.ready and not dead and time.monotonic() - w.since < max(60.0, timeout_s):
                    continue  # still starting up (imports); the startup gets its own generous limit
                if not w.ready:
                    w.kill()
                    from limo.errors import LimoError

                    raise LimoError(
                        f"a grading worker failed to start (exit code {w.proc.returncode}); "
                        f"check that `{sys.executable} -c 'import limo.grading, math_verify'` works"
                    )
                if dead or time.monotonic() - w.since > timeout_s:
                    stuck = w.pending.popleft()
                    results[stuck] = GradeResult("timeout", _safe_extract(items[stuck][0]))
                    done += 1
                    if progress:
                        progress(1)
                    if w.pending:
                        queue.appendleft(list(w.pending))
                    del busy[pos]
                    replace(pos)
        return [r for r in results if r is not None]


def _safe_extract(text: str | None) -> str | None:
    try:
        return extract_answer(text or "")
    except Exception:
        return None


_POOL: GradingPool | None = None
_POOL_LOCK = threading.RLock()


def _pool(workers: int) -> GradingPool:
    global _POOL
    if _POOL is not None and (_POOL.pid != os.getpid() or _POOL.size != workers):
        if _POOL.pid == os.getpid():
            _POOL.close()
        _POOL = None
    if _POOL is None:
        _POOL = GradingPool(workers)
    return _POOL


@atexit.register
def _close_pool() -> None:
    if _POOL is not None and _POOL.pid == os.getpid():
        _POOL.close()


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def grade_many(
    items: Sequence[tuple[str | None, str | None]],
    timeout_s: float = 5.0,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[GradeResult]:
    """Grade (response, gold) pairs in worker processes with a hard per-item timeout. Order preserved."""
    if timeout_s <= 0:
        raise ValueError("timeout_s must be > 0")
    items = list(items)
    if not items:
        return []
    with _POOL_LOCK:  # one shared pool: callers on several threads take turns
        return _pool(workers or default_workers()).grade_many(items, timeout_s=timeout_s, progress=progress)


def grade(response: str | None, gold: str | None, timeout_s: float = 5.0) -> GradeResult:
    """Grade one response against one gold answer (in a worker process, with the hard timeout)."""
    return grade_many([(response, gold)], timeout_s=timeout_s, workers=None)[0]


def summarize(results: Sequence[GradeResult]) -> dict[str, int]:
    counts = {v: 0 for v in VERDICTS}
    for r in results:
        counts[r.verdict] += 1
    counts["total"] = len(results)
    return counts


def grade_jsonl(
    in_path: str | os.PathLike,
    out_path: str | os.PathLike | None = None,
    timeout_s: float = 5.0,
    workers: int | None = None,
    response_field: str = "response",
    answer_field: str = "answer",
) -> dict[str, int]:
    """`limo grade`: grade every row of a JSONL (or Parquet) file; write rows + correct/verdict/extracted.

    Returns the verdict counts. A row without the response or answer field is an InputError naming file+line.
    """
    from pathlib import Path

    from limo.console import console, kv_table, progress_bar
    from limo.errors import InputError
    from limo.io import iter_jsonl, read_table, write_jsonl

    in_path = Path(in_path)
    if in_path.suffix == ".parquet":
        rows = read_table(in_path)
        numbered = list(enumerate(rows, start=1))
    else:
        numbered = list(iter_jsonl(in_path))
    items = []
    for line, row in numbered:
        for field in (response_field, answer_field):
            if field not in row:
                raise InputError("missing field", path=str(in_path), line=line, field=field)
        response, answer = row[response_field], row[answer_field]
        if response is not None and not isinstance(response, str):
            raise InputError(
                f"expected a string, got {type(response).__name__}", path=str(in_path), line=line, field=response_field
            )
        if answer is not None and not isinstance(answer, str):
            from limo.records import answer_to_str

            answer = answer_to_str(answer)
        items.append((response, answer))
    with progress_bar(len(items), "grading") as advance:
        results = grade_many(items, timeout_s=timeout_s, workers=workers, progress=advance)
    out_rows = [{**row, **res.to_dict()} for (_, row), res in zip(numbered, results, strict=True)]
    if out_path is not None:
        write_jsonl(out_path, out_rows)
    counts = summarize(results)
    shown = {k: f"{v} ({v / max(1, counts['total']):.1%})" if k != "total" else v for k, v in counts.items()}
    console.print(kv_table(f"grading {in_path.name}", shown))
    return counts
