"""`limo grade IN.jsonl -o OUT.jsonl`: grade every row of a JSONL or Parquet file."""

from __future__ import annotations

import os

from limo.grading.pool import grade_many
from limo.grading.result import Rule, summarize


def grade_jsonl(
    in_path: str | os.PathLike,
    out_path: str | os.PathLike | None = None,
    timeout_s: float = 5.0,
    workers: int | None = None,
    response_field: str = "response",
    answer_field: str = "answer",
    rule: Rule = "extended",
) -> dict[str, int]:
    """Grade every row; write rows + correct/verdict/extracted/rule. Returns the verdict counts.

    A row without the response or answer field is an InputError naming file+line. A row with a `choices` list is
    graded as multiple choice (its answer is the letter).
    """
    from pathlib import Path

    from limo.console import console, kv_table, progress_bar
    from limo.errors import InputError
    from limo.io import iter_jsonl, read_table, write_jsonl
    from limo.records import answer_to_str

    in_path = Path(in_path)
    if in_path.suffix == ".parquet":
        numbered = list(enumerate(read_table(in_path), start=1))
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
            answer = answer_to_str(answer)
        choices = row.get("choices")
        if choices is not None and not (isinstance(choices, list) and all(isinstance(c, str) for c in choices)):
            raise InputError("expected a list of option texts", path=str(in_path), line=line, field="choices")
        items.append((response, answer, choices))
    with progress_bar(len(items), "grading") as advance:
        results = grade_many(items, timeout_s=timeout_s, workers=workers, progress=advance, rule=rule)
    out_rows = [{**row, **res.to_dict()} for (_, row), res in zip(numbered, results, strict=True)]
    if out_path is not None:
        write_jsonl(out_path, out_rows)
    counts = summarize(results)
    shown = {k: f"{v} ({v / max(1, counts['total']):.1%})" if k != "total" else v for k, v in counts.items()}
    console.print(kv_table(f"grading {in_path.name} (rule {rule})", shown))
    return counts
