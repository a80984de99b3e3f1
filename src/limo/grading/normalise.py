"""A canonical string form of an answer, so most comparisons are a cheap string equality.

Strips `$`, `\\(\\)`, `\\text{}`/`\\mathrm{}`, `\\left/\\right`, `\\dfrac`, spacing macros, `^\\circ`/`°`, `\\%`,
`\\$`, trailing units (`cm`, `units`, `degrees`), a leading `x =` (unless asked not to), thousands separators.
"""

from __future__ import annotations

import re

_TEXT_CMDS = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mathit|mbox|operatorname|rm)\s*\{([^{}]*)\}")
_SPACING = re.compile(r"\\[,;:! ]|\\quad|\\qquad|~")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree|\^\s*\{\s*\\text\{\s*o\s*\}\s*\}")
_UNIT_WORDS = (
    "cm|mm|km|m|meters?|centimeters?|inches|inch|in|feet|foot|ft|units?|square units|sq units|degrees?|dollars?|"
    "cents?|hours?|minutes?|seconds?|days?|years?|mph|miles?|pounds?|kg|g|grams?|liters?|ml|l|s|h|min"
)
_UNIT_TAIL = re.compile(rf"^(.*?\d)\s*(?:\\?\s*)?(?:(?:square|cubic|sq)\s+)?(?:{_UNIT_WORDS})(?:\^?\{{?[23]\}}?)?\.?$")
_VAR_PREFIX = re.compile(r"^[a-zA-Z](?:_\{?\w+\}?)?\s*=\s*(?=[^=])")


def unwrap_box(s: str) -> str:
    for _ in range(5):
        m = re.fullmatch(r"\s*\\(?:boxed|fbox)\s*\{(.*)\}\s*", s, re.S)
        if not m:
            break
        s = m.group(1)
    return s


def normalize(s: str, *, strip_var: bool = True) -> str:
    """A canonical string form of an answer for cheap exact comparison."""
    s = s.strip()
    s = unwrap_box(s)
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
