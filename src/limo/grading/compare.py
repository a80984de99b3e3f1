"""Comparing an extracted answer with a gold answer: exact checks first, math-verify for the rest.

1. Cheap exact checks (most items end here, no sympy): normalised string equality, a multiple-choice letter against
   a letter gold, exact rationals (`025 = 25`, `1/2004! != 1/2006!`; a decimal literal on either side gets a 1e-4
   relative tolerance, as Qwen2.5-Math's `math_equal`), comma-separated parts matched part by part, and intervals
   or tuples matched endpoint by endpoint (so the decimal tolerance applies inside `[2.6667, 5)` as it does alone).
2. Otherwise math-verify (`parse` + `verify`), with guards: two exact rationals must be equal, and two true
   numeric equations are compared side by side.

`grade_item` puts extraction and comparison together for one (response, gold) under a rule; the worker pool runs
it in separate processes with a hard timeout, because math-verify parses LaTeX with sympy.
"""

from __future__ import annotations

import logging
import math
import re

from limo.grading.exact import exact_value
from limo.grading.normalise import normalize

_MC_GOLD = re.compile(r"^[\(（\[]?\s*([A-E])\s*[\)）\]]?(?:\s*[.:：、．]\s*(.*))?$", re.S)
_MC_PRED = re.compile(r"^[\(（\[]?\s*([A-E])\s*[\)）\]]?(?:$|\s*[.:：、．]|\s+)", re.S)


def _mc_letter(s: str) -> str | None:
    t = normalize(s, strip_var=False) if s else ""
    m = _MC_PRED.match(t) or _MC_PRED.match(s.strip().strip("$"))
    return m.group(1) if m else None


def split_top_level(s: str) -> list[str]:
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
        gparts = split_top_level(_strip_dollars_parts(gold))
        pparts = split_top_level(_strip_dollars_parts(pred))
        if len(gparts) > 1 and len(pparts) == len(gparts):
            return _match_parts(pparts, gparts)
    # intervals and tuples with the same brackets: endpoint by endpoint, in order (the decimal tolerance applies)
    if _is_wrapped(ng) and _is_wrapped(np_) and ng[0] == np_[0] and ng[-1] == np_[-1]:
        gparts, pparts = split_top_level(ng[1:-1]), split_top_level(np_[1:-1])
        if len(gparts) == len(pparts) > 1 and all(cheap_verdict(p, g) for p, g in zip(pparts, gparts, strict=True)):
            return True
    return None


def _match_parts(pparts: list[str], gparts: list[str]) -> bool | None:
    """Every gold part matched by a distinct predicted part (order-insensitive). None if a part is undecided."""
    remaining = list(pparts)
    for g in gparts:
        hit = None
        for j, p in enumerate(remaining):
            v = cheap_verdict(p, g)
            if v is None:
                v = math_verify_equal(p, g)
            if v:
                hit = j
                break
        if hit is None:
            return False
        remaining.pop(hit)
    return True


_MV = None


def load_math_verify():
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


def math_verify_equal(pred: str, gold: str) -> bool:
    mv = load_math_verify()
    g = mv.parse(_wrap_latex(gold), parsing_timeout=None)
    p = mv.parse(_wrap_latex(pred), parsing_timeout=None)
    if not g or not p:
        return False
    ok = mv.verify(g, p, timeout_seconds=None)
    if ok and _rational_mismatch(g[0], p[0]):
        return False  # math-verify compares e.g. 1/2004! and 1/2006! as floats; exact rationals must be equal
    if ok and _numeric_equation_mismatch(g[0], p[0]):
        return False  # two true numeric equations ("539 = 7^2*11", "360 = 2^3*3^2*5") are different answers
    if ok and _inequality_mismatch(g[0], p[0]):
        return False  # "x <= 2" is not the number 2 (math-verify compares the right-hand side)
    return bool(ok)


def _inequality_mismatch(a, b) -> bool:
    """Exactly one side is an inequality (`x <= 2` against `2`)."""
    try:
        from sympy.core.relational import Equality, Relational

        def is_inequality(x) -> bool:
            return isinstance(x, Relational) and not isinstance(x, Equality)

        return is_inequality(a) != is_inequality(b)
    except Exception:
        return False


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


def rule_extract(response: str | None, rule: str) -> str | None:
    """The extracted answer under `rule` (`boxed`: the authors' last box; `extended`: limo's extractor)."""
    from limo.grading.extraction import boxed_answer, extract_answer

    return boxed_answer(response) if rule == "boxed" else extract_answer(response)


def compare_answer(extracted: str | None, gold: str | None) -> str:
    """Verdict for an extracted answer: no_answer, correct or incorrect (no timeout here; the pool adds it)."""
    if extracted is None:
        return "no_answer"
    if gold is None or not str(gold).strip():
        return "incorrect"
    gold = str(gold)
    verdict = cheap_verdict(extracted, gold)
    if verdict is None:
        try:
            verdict = math_verify_equal(extracted, gold)
        except Exception:
            verdict = False
    return "correct" if verdict else "incorrect"


def grade_item(
    response: str | None, gold: str | None, rule: str = "extended", choices: list[str] | None = None
) -> tuple[str, str | None, str | None]:
    """(verdict, extracted, boxed_verdict) for one item, in-process and without a timeout. Used by the workers.

    `choices` (the option texts in shown order) makes it a multiple-choice item whose gold is a letter.
    With rule `extended`, `boxed_verdict` is the verdict of rule `boxed` on the same response (else None).
    """
    if choices:
        from limo.grading.choice import grade_choice

        verdict, extracted = grade_choice(response, gold, choices, rule)
        boxed = grade_choice(response, gold, choices, "boxed")[0] if rule == "extended" else None
        return verdict, extracted, boxed
    extracted = rule_extract(response, rule)
    verdict = compare_answer(extracted, gold)
    if rule != "extended":
        return verdict, extracted, None
    boxed_extracted = rule_extract(response, "boxed")
    if boxed_extracted is None:
        boxed = "no_answer"
    elif boxed_extracted == extracted:
        boxed = verdict
    else:
        boxed = compare_answer(boxed_extracted, gold)
    return verdict, extracted, boxed
