"""The row schema shared by every stage, in one place.

A problem row (pool, curation stages, benchmarks) has these core fields; stages add their own columns
(e.g. `weak_pass_rate`, `candidates`, `quality_score`) and never remove core ones.
"""

from typing import Any

from limo.errors import InputError

# Core problem fields and their types. `answer` is always a string (gold final answer) or None before pool filtering.
PROBLEM_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "problem": str,
    "answer": (str, type(None)),
    "solution": (str, type(None)),
    "source": str,
    "subject": (str, type(None)),
    "level": (int, type(None)),
}

# Every dropped row gets one of these (or a stage-specific reason string) in `drop_reason`.
DROP_REASON = "drop_reason"

# The LIMO system prompt (LIMO eval scripts; also the paper's SFT data format).
LIMO_SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."


def answer_to_str(value: Any) -> str | None:
    """Gold answers are strings: integral floats become integers ("27.0" -> "27"), lists/dicts compact JSON."""
    import json

    if value is None:
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    text = str(value).strip()
    return text or None


def check_problem_row(row: dict[str, Any], *, path: str | None = None, line: int | None = None) -> None:
    """Raise InputError naming the field if a core field is missing or has the wrong type."""
    for field, typ in PROBLEM_FIELDS.items():
        if field not in row:
            raise InputError("missing field", path=path, line=line, field=field)
        if not isinstance(row[field], typ):
            raise InputError(f"expected {typ}, got {type(row[field]).__name__}", path=path, line=line, field=field)


def assistant_text(reasoning: str | None, response: str) -> str:
    """The assistant turn that is scored and trained on: `<think>\\n…\\n</think>\\n\\n` + response when the
    reasoning was kept apart, else the response itself."""
    if reasoning:
        return f"<think>\n{reasoning}\n</think>\n\n{response}"
    return response


def chat_messages(problem: str, response: str | None = None, system: str | None = LIMO_SYSTEM_PROMPT) -> list[dict]:
    """system/user(/assistant) chat messages in the LIMO format."""
    messages = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": problem})
    if response is not None:
        messages.append({"role": "assistant", "content": response})
    return messages
