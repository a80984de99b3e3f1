"""The model judge: asks a model whether a response's final answer matches the gold answer.

    messages = judge_messages(problem, gold, answer)   # system + user turn
    parse_verdict(reply)                               # "correct" | "incorrect" | None (unparsable)

Used by `limo eval --judge MODEL` only where the rule grader gives no verdict (`timeout`) or the benchmark's spec
says its golds may be text and this gold is not mathematical (GradeSchool, Kaoyan, Gaokao text items), as the
authors do with Qwen2.5-32B-Instruct (GAIR-NLP/LIMO README and eval/readme.md "Model-Based Evaluation"@2284c6a).
The prompt follows the structure of the authors' eval/prompt.txt (an examiner compares the student's final answer
with the standard answer, does not re-solve, and ends with "## Correctness" and CORRECT or WRONG); the wording
here is ours. The parse is stricter than the authors' eval_model_based.py (which tests `"correct" in text`, so
"INCORRECT" would count as correct): a reply counts only with exactly one of CORRECT / WRONG / INCORRECT as a
word, preferably under "## Correctness".
"""

from __future__ import annotations

import re
import unicodedata

JUDGE_SYSTEM = (
    "You are an examiner. Decide whether a student's final answer to a question matches the standard answer. "
    "Do not solve the problem again and do not redo calculations: compare the two answers, taking the question's "
    "requirements into account. An interval must be the same interval, not a value inside it; when the standard "
    "answer lists several solutions, the student must give all of them. Always decide.\n\n"
    "Reply in this format:\n## Analysis\n<one or two sentences>\n\n## Correctness\n<CORRECT or WRONG>"
)
MAX_ANSWER_CHARS = 2000  # the end of an unextracted response is what the judge sees


def judge_messages(problem: str, gold: str, answer: str) -> list[dict[str, str]]:
    answer = answer if len(answer) <= MAX_ANSWER_CHARS else "..." + answer[-MAX_ANSWER_CHARS:]
    user = f"Question: {problem}\n\nStandard Answer: {gold}\n\nStudent's Final Answer: {answer}"
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


_WORD = re.compile(r"\b(CORRECT|INCORRECT|WRONG)\b", re.IGNORECASE)
_SECTION = re.compile(r"#+\s*Correctness\s*[:：]?\s*(.*)", re.IGNORECASE | re.DOTALL)


def parse_verdict(reply: str | None) -> str | None:
    """ "correct" / "incorrect" from a judge reply; None when it names neither or both."""
    if not reply:
        return None
    section = _SECTION.search(reply)
    text = section.group(1) if section else reply
    found = {m.group(1).upper() for m in _WORD.finditer(text)}
    if found == {"CORRECT"}:
        return "correct"
    if found and found <= {"WRONG", "INCORRECT"}:
        return "incorrect"
    return None


_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_WORDS = re.compile(r"(?<!\\)\b[A-Za-z]{3,}\b")
_LATEX_WORDS = {"frac", "sqrt", "text", "left", "right", "cdot", "times", "infty", "leq", "geq", "pi", "mid", "cup"}


def is_mathematical(gold: str) -> bool:
    """False for a gold that is prose (CJK text, or two or more plain words outside LaTeX commands)."""
    if _CJK.search(gold):
        return False
    text = re.sub(r"\\[A-Za-z]+", " ", unicodedata.normalize("NFKC", gold))
    words = [w for w in _WORDS.findall(text) if w.lower() not in _LATEX_WORDS]
    return len(words) < 2


def needs_judge(gold: str, verdict: str, spec_judge: bool) -> bool:
    """Where the judge decides: the rule grader gave no verdict, or the benchmark allows text golds and this one is."""
    return verdict == "timeout" or (spec_judge and not is_mathematical(gold))
