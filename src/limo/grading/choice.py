"""Multiple-choice grading (GPQA Diamond): the gold is a letter, the options are known.

An answer counts when the response gives the right letter - in `\\boxed{C}`, as "(C)", "answer: C", "the answer is
C" - or the full text of the right option. Another option's text never counts, and neither does a letter that is
not one of the options. Rule `boxed` (the authors' GPQA prompt asks for the letter in `\\boxed{}`: GAIR-NLP/LIMO
eval/data/gpqa/test.jsonl@2284c6a, "put your choice letter without any other text with \\boxed{} in the end") reads
the last box only; rule `extended` also reads an unboxed letter or option text at the end of the response.
"""

from __future__ import annotations

import re

from limo.grading.extraction import boxed_answer, extract_answer
from limo.grading.normalise import normalize

LETTERS = "ABCDEFGHIJ"

_LETTER_ONLY = re.compile(r"^[\s(（\[*{]*(?:\\text\{\s*)?([A-J])(?:\s*\})?[\s)）\]*}.:：]*$")
_LETTER_LEAD = re.compile(r"^[\s(（\[*]*([A-J])[)）\]]?\s*[.:：)）]\s*(.+)$", re.S)
_ANSWER_LETTER = re.compile(
    r"(?i:answer|choice|option)\s*(?i:is|:|should\s+be|would\s+be)?\s*[:：]?\s*(?i:option\s*)?\**\s*[(（\[]?\s*"
    r"([A-J])\s*[)）\]]?\**(?![A-Za-z0-9])"
)
_PAREN_LETTER = re.compile(r"[(（]([A-J])[)）]")


def _same_text(a: str, b: str) -> bool:
    na, nb = normalize(a, strip_var=False).lower(), normalize(b, strip_var=False).lower()
    return bool(na) and na == nb


def resolve_choice(answer: str, choices: list[str]) -> str | None:
    """The option letter an extracted answer names: a letter ("C", "(C)", "C. text"), or exactly one option's text."""
    letters = LETTERS[: len(choices)]
    m = _LETTER_ONLY.match(answer)
    if m and m.group(1) in letters:
        return m.group(1)
    m = _LETTER_LEAD.match(answer)
    if m and m.group(1) in letters:
        return m.group(1)
    hits = [letters[i] for i, text in enumerate(choices) if _same_text(answer, text)]
    return hits[0] if len(set(hits)) == 1 else None


def _letter_in_prose(tail: str, choices: list[str]) -> str | None:
    """An unboxed letter at the end: "the answer is (C)", "Answer: C", or "(C)" alone on the last line."""
    letters = LETTERS[: len(choices)]
    found = [m.group(1) for m in _ANSWER_LETTER.finditer(tail) if m.group(1) in letters]
    if found:
        return found[-1]
    lines = [ln for ln in tail.split("\n") if ln.strip()]
    if lines:
        on_last = {m.group(1) for m in _PAREN_LETTER.finditer(lines[-1])} & set(letters)
        if len(on_last) == 1:
            return on_last.pop()
    return None


def _option_text_at_end(tail: str, choices: list[str]) -> str | None:
    """The one option whose full text ends the response (its last line); None if none or several."""
    lines = [ln.strip() for ln in tail.split("\n") if ln.strip()]
    if not lines:
        return None
    last = normalize(lines[-1], strip_var=False).lower()
    hits = {
        LETTERS[i] for i, text in enumerate(choices) if (t := normalize(text, strip_var=False).lower()) and t in last
    }
    return hits.pop() if len(hits) == 1 else None


def choice_answer(response: str | None, choices: list[str], rule: str) -> tuple[str | None, str | None]:
    """(letter or None, the extracted text) of a response to a multiple-choice item."""
    if not response:
        return None, None
    if rule == "boxed":
        boxed = boxed_answer(response)
        return (resolve_choice(boxed, choices), boxed) if boxed is not None else (None, None)
    extracted = extract_answer(response)
    if extracted is not None:
        letter = resolve_choice(extracted, choices)
        if letter is not None:
            return letter, extracted
    tail = response[-3000:]
    letter = _letter_in_prose(tail, choices) or _option_text_at_end(tail, choices)
    if letter is not None:
        return letter, letter
    return None, extracted


def grade_choice(response: str | None, gold: str | None, choices: list[str], rule: str) -> tuple[str, str | None]:
    """(verdict, extracted): `correct` for the gold letter or its option text, `incorrect` for anything else that
    was extracted, `no_answer` when nothing was."""
    letter, extracted = choice_answer(response, choices, rule)
    if letter is None:
        return ("no_answer" if extracted is None else "incorrect"), extracted
    gold_letter = (gold or "").strip().strip("()（）").upper()
    return ("correct" if letter == gold_letter else "incorrect"), letter
