"""Stage 07 `verify`: grade every candidate against the gold answer with the shared grader; keep the correct ones.

Uses limo.grading.grade_many (the same function difficulty sampling and evaluation use, so they cannot disagree),
in worker processes with a hard per-item timeout. Adds `verdict`, `extracted`, `correct`. Drops, by reason:

    truncated   the engine stopped at max_tokens (finish_reason "length"): an unfinished chain is never kept,
                even when a \\boxed answer happens to appear in it
    no_gold     the problem has no gold answer to grade against
    incorrect / no_answer / timeout   the grader's verdict

The answer is looked for in `response` (the final part); when that is empty, in `reasoning`.
Run as part of `limo curate RECIPE.yaml --out RUN` (recipe key `verify`).
"""

from dataclasses import dataclass

from datasets import Dataset

from limo.runs import StageContext, StageResult
from limo.stages.common import to_rows


@dataclass
class Config:
    timeout_s: float = 5.0  # per-candidate wall-clock limit of the grader
    workers: int | None = None  # grader processes (None: the grader's default)
    drop_truncated: bool = True

    def __post_init__(self):
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")


def graded_text(row: dict) -> str:
    response = row.get("response") or ""
    return response if response.strip() else (row.get("reasoning") or "")


def run(ds: Dataset, cfg: Config, ctx: StageContext) -> StageResult:
    from limo.console import progress_bar
    from limo.grading import grade_many

    rows = to_rows(ds)
    kept: list[dict] = []
    dropped: list[dict] = []
    todo: list[dict] = []
    for row in rows:
        if cfg.drop_truncated and row.get("finish_reason") == "length":
            dropped.append({**row, "verdict": None, "extracted": None, "correct": False, "drop_reason": "truncated"})
        elif row.get("answer") is None or not str(row["answer"]).strip():
            dropped.append({**row, "verdict": None, "extracted": None, "correct": False, "drop_reason": "no_gold"})
        else:
            todo.append(row)
    results = []
    if todo:
        with progress_bar(len(todo), "verify") as advance:
            results = grade_many(
                [(graded_text(r), str(r["answer"])) for r in todo],
                timeout_s=cfg.timeout_s,
                workers=cfg.workers,
                progress=advance,
            )
    for row, res in zip(todo, results, strict=True):
        graded = {**row, "verdict": res.verdict, "extracted": res.extracted, "correct": bool(res.correct)}
        if res.correct:
            kept.append(graded)
        else:
            dropped.append({**graded, "drop_reason": res.verdict})
    by_model: dict[str, dict[str, int]] = {}
    for row, ok in [(r, 1) for r in kept] + [(r, 0) for r in dropped]:
        entry = by_model.setdefault(row["candidate_model"], {"candidates": 0, "correct": 0})
        entry["candidates"] += 1
        entry["correct"] += ok
    stats = {"graded": len(todo), "correct": len(kept), "by_model": by_model}
    return StageResult.from_rows(kept, dropped, stats)
