"""Finding the final answer in a response, under the two grading rules.

- `boxed_answer` (rule `boxed`, the authors' rule): the text after the LAST occurrence of "boxed", brace-matched, as
  GAIR-NLP/LIMO eval/utils/parser.py@2284c6a `extract_answer` reads it (`pred_str.split("boxed")[-1]`, then a
  brace stack; the brace-less `\\boxed 5` form up to `$`). No box, or a last box that never closes: no answer.
- `extract_answer` (rule `extended`, limo's own): the last closed `\\boxed{}`/`\\fbox{}` (several boxes in a row,
  `\\boxed{1}, \\boxed{2}`, are one answer), unless a "final answer is ..." phrase comes after it; else a stated
  final answer ("Final answer: ...", "Answer $9$"), a multiple-choice letter, or a concluding sentence
  ("Therefore, the remainder is 0."). A response that ends in a loop (a cut-off generation repeating itself)
  gets no concluding-sentence answer.
"""

from __future__ import annotations

import re

_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_MAX_BOX_CANDIDATES = 20  # only the last few boxes are tried, so many unclosed boxes cannot make extraction quadratic
_TAIL_CHARS = 3000  # phrases are searched in the end of the response only
# chat-template and end-of-text tokens a raw completion may end with (`<|im_end|>`, `<|eot_id|>`, `</s>`, ...)
_TEMPLATE_TOKENS = re.compile(r"(?:<\|[A-Za-z_\-]{1,40}\|>|<｜[^｜>]{1,40}｜>|</s>|<eos>|<end_of_turn>)")


def read_braced(text: str, start: int) -> tuple[str, int] | None:
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


def _box_at(text: str, pos: int) -> tuple[str, int] | None:
    """(content, end) of the box command whose name ends at `pos`; None if unclosed or empty."""
    i = pos
    while i < len(text) and text[i] in " \t":
        i += 1
    if i >= len(text):
        return None
    if text[i] == "{":
        got = read_braced(text, i)
        if got is None:
            return None
        content = got[0].strip()
        return (content, got[1]) if content else None
    # brace-less form: `\boxed 5` or `\boxed5` -> up to whitespace or `$`
    m = re.match(r"[^\s$]+", text[i:])
    if not m:
        return None
    content = m.group(0).rstrip(".,;")
    return (content, i + m.end()) if content else None


def _closed_boxes(text: str) -> list[tuple[int, str, int]]:
    """(start, content, end) of the last closed boxes, in text order."""
    found = []
    for m in list(_BOX_RE.finditer(text))[-_MAX_BOX_CANDIDATES:]:
        got = _box_at(text, m.end())
        if got is not None:
            found.append((m.start(), got[0], got[1]))
    return found


def last_boxed(text: str) -> str | None:
    """Content of the last closed `\\boxed{}`/`\\fbox{}` in `text`."""
    boxes = _closed_boxes(text)
    return boxes[-1][1] if boxes else None


def boxed_answer(text: str | None) -> str | None:
    """The authors' extraction: the content of the box after the last "boxed"; None when there is none or it never
    closes (their grader then compares an empty or run-on string, which is never correct)."""
    if not text:
        return None
    at = text.rfind("boxed")
    if at < 0:
        return None
    got = _box_at(text, at + len("boxed"))
    if got is None:
        return None
    content = re.sub(r"\n\s*", "", got[0])  # as the authors: line breaks inside the box removed
    content = content.removeprefix(":").removesuffix(".").removesuffix("/").strip()
    return content or None


_BOX_SEPARATOR = re.compile(r"^(?:\s|\$|,|;|\\quad|\\qquad|\\text\{\s*(?:and|or)\s*\}|\band\b|\bor\b|&|\\\\)*$")


def _joined_boxes(text: str) -> tuple[str, int] | None:
    """The last box, joined with the boxes right before it when only separators stand between them
    (`\\boxed{1}, \\boxed{2} and \\boxed{3}` -> "1, 2, 3"). Returns (answer, end of the last box)."""
    boxes = _closed_boxes(text)
    if not boxes:
        return None
    parts = [boxes[-1][1]]
    for (_, content, end), (next_start, _, _) in zip(reversed(boxes[:-1]), reversed(boxes[1:]), strict=True):
        if end > next_start or not _BOX_SEPARATOR.match(text[end:next_start]):  # nested, or words between
            break
        if content != parts[0]:  # the same box repeated (`\boxed{3}\n\boxed{3}`) is one answer, not "3, 3"
            parts.insert(0, content)
    return ", ".join(parts), boxes[-1][2]


_FINAL_RE = re.compile(
    r"(?:final\s+answer\s*(?:is|:|=)|最终答案\s*(?:是|为|:|：)|答案\s*(?:是|为|:|：))\s*[:：]?\s*(.+)", re.IGNORECASE
)
# a line that is only "Answer <value>" / "**Answer:** <value>"
_ANSWER_LINE = re.compile(
    r"(?im)^[ \t*#]*answer[ \t*]*[:：]?[ \t*]*"
    r"(\$[^$\n]{1,200}\$|\\\(.{1,200}?\\\)|-?\d[\d,]*(?:\.\d+)?(?:/\d+)?)[ \t*.]*$"
)
_LETTER_RE = re.compile(
    r"(?i:answer|option|choice)\s*(?i:is|:|should\s+be|would\s+be)?\s*(?i:option\s*)?[:：]?\s*"
    r"[\(（\[]?\s*([A-E])\s*[\)）\]]?(?![A-Za-z])"
    r"|(?:答案|选项|应选|选)\s*(?:是|为|选)?\s*[:：]?\s*[\(（\[]?\s*([A-E])(?![A-Za-z])"
)


def _clean_phrase(s: str) -> str | None:
    s = s.strip()
    m = re.fullmatch(r"\$+(.+?)\$+.*", s) or re.fullmatch(r"\\\((.+?)\\\).*", s) or re.fullmatch(r"\\\[(.+?)\\\].*", s)
    if m:
        s = m.group(1)
    s = s.strip().rstrip("。.").strip()
    s = s.strip("*").strip()
    return s or None


def extract_answer(text: str | None) -> str | None:
    """Rule `extended`: the final answer in a response (see the module docstring for the order)."""
    if not text:
        return None
    text = _TEMPLATE_TOKENS.sub("", text)
    tail = text[-_TAIL_CHARS:]
    tail_offset = len(text) - len(tail)
    phrases = list(_FINAL_RE.finditer(tail))
    boxed = _joined_boxes(text)
    if boxed is not None:
        if phrases and phrases[-1].start() + tail_offset >= boxed[1]:
            cleaned = _clean_phrase(phrases[-1].group(1).split("\n")[0])
            if cleaned and _BOX_RE.search(cleaned) is None:
                return cleaned  # a "Final answer: ..." after the last box is the answer the response ends with
        return boxed[0]
    if phrases:
        cleaned = _clean_phrase(phrases[-1].group(1).split("\n")[0])
        if cleaned:
            return cleaned
    lines = list(_ANSWER_LINE.finditer(tail))
    if lines:
        return _clean_phrase(lines[-1].group(1))
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
_VALUE = r"(\\\(.+?\\\)|\$[^$\n]{1,80}\$|-?\\?\$?\d[\d,]*(?:\.\d+)?(?:/\d+)?%?|-?\.\d+)"
_CONCLUDE_IS = re.compile(
    r"(?i:(?:\b(?:is|are|be|equals|was|has|have|at|with)|(?<![<>!≤≥])=)\s+"
    r"(?:indeed\s+|exactly\s+|simply\s+|still\s+|just\s+)?(?:equal\s+to\s+)?)"
    + _VALUE
    + r"(?:\\\)|\$)?(?:\s*(?:[a-zA-Z%°²³]+)){0,3}\s*[.!]?\s*$"
)
_CONCLUDE_VALUE_IS = re.compile(
    _VALUE + r"(?:\s+[a-zA-Z]+){0,2}\s+(?i:is|as)\s+(?i:the|indeed\s+the)\s+(?i:correct|right|final|solution|answer)\b"
)
_CONCLUDE_CUE = re.compile(
    r"(?i)\b(?:therefore|thus|hence|so|answer|conclusion|confident|result|final|solution|in\s+total|overall)\b|^The\s"
)
_FILLER = re.compile(r"(?i)^(?:i think|i'm|i am|everything|yes|that|this|so,? i)\b[^0-9$\\]*$")
# a relation in the stated value (`x \leq 2`, `x <= 2`): the value is the whole relation, never its right-hand side
_RELATION_BEFORE = re.compile(r"(?:<|>|\\leq?|\\geq?|\\neq?|≤|≥|\\lt|\\gt)\s*$")
_RELATION_STATED = re.compile(
    r"\$?([a-zA-Z]\s*(?:<=|>=|<|>|≤|≥|\\leq?|\\geq?|\\lt|\\gt)\s*-?(?:\d[\d,]*(?:\.\d+)?(?:/\d+)?|\\frac\{\d+\}\{\d+\}))"
    r"\$?\s*[.!]?\s*$"
)


def _loops(tail: str) -> bool:
    """True when the response ends by repeating itself: its last line (or last 60 characters) occurs 3+ times in the
    tail. A generation cut off inside such a loop never concluded."""
    lines = [ln.strip() for ln in tail.split("\n") if ln.strip()]
    if not lines:
        return False
    last = lines[-1]
    if len(last) >= 8 and sum(1 for ln in lines if ln == last) >= 3:
        return True
    end = tail.rstrip()[-60:]
    return len(end) == 60 and tail.count(end) >= 3


def conclusion_answer(tail: str) -> str | None:
    """The value a concluding sentence states, from the last 3 non-empty lines.

    Filler ("I think that's the answer.") and finished sentences without any digit are skipped; a display line
    (`$$\\tan A = 2$$`) counts when the sentence before it carries the cue ("In conclusion, we have: ...").
    """
    tail = _TEMPLATE_TOKENS.sub("", tail)
    if _loops(tail):
        return None
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
        relation = _RELATION_STATED.search(sent)
        if relation:
            return relation.group(1).strip()  # "x <= 2": the answer is the relation, never its right side
        m = _CONCLUDE_IS.search(sent) or _CONCLUDE_VALUE_IS.search(sent)
        if not m:
            return None
        if _RELATION_BEFORE.search(sent[: m.start(1)]):
            return None
        value = m.group(1).strip()
        if value.startswith("\\(") and value.endswith("\\)"):
            value = value[2:-2].strip()
        value = value.strip("$").strip()
        value = value.rstrip(",")
        return value or None
    return None
