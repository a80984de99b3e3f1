"""The candidates of a curation run, grouped per problem, as the review page shows them.

Reads RUN/08_score/data.parquet (one row per verified and scored candidate; see the curation run contract) and
turns it into JSON-ready problem summaries and problem details. A run without candidates is a clear LimoError.

    from limo.review.data import load_review_data
    data = load_review_data(Path("runs/demo"))
    data.problem_ids, data.summary(pid, decision), data.detail(pid, decision)
"""

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from limo.errors import InputError, LimoError

SCORE_STAGE_DIR = "08_score"
REQUIRED_COLUMNS = ("id", "problem", "candidate_id", "response")
# problem-level columns shown on the page when present (candidate rows carry every problem column)
PROBLEM_COLUMNS = (
    "id", "problem", "answer", "solution", "source", "subject", "level", "difficulty_tier",
    "weak_attempts", "weak_successes", "weak_pass_rate", "strong_pass_rate",
)  # fmt: skip
CANDIDATE_COLUMNS = (
    "candidate_id", "candidate_model", "response", "reasoning", "finish_reason", "completion_tokens",
    "verdict", "extracted", "features", "rule_score", "judge_score", "quality_score", "quality_level",
)  # fmt: skip


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf floats become None; nested dicts/lists cleaned too."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def parse_evidence(raw: Any, text_length: int) -> tuple[dict[str, list[list[int]]], str | None]:
    """The `evidence` column ({feature: [[start, end], ...]} as JSON) -> clamped spans, plus an error if unreadable."""
    if raw is None or raw == "":
        return {}, None
    try:
        obj = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as e:
        return {}, f"evidence is not valid JSON ({e.msg})"
    if not isinstance(obj, dict):
        return {}, "evidence is not a JSON object"
    spans: dict[str, list[list[int]]] = {}
    skipped = 0
    for feature, items in obj.items():
        good = []
        for item in items if isinstance(items, list) else []:
            if (
                isinstance(item, (list, tuple))
                and len(item) == 2
                and all(isinstance(x, int) and not isinstance(x, bool) for x in item)
            ):
                start, end = max(0, item[0]), min(text_length, item[1])
                if start < end:
                    good.append([start, end])
                    continue
            skipped += 1
        spans[str(feature)] = good
    return spans, (f"{skipped} evidence span(s) out of range or malformed, not shown" if skipped else None)


@dataclass
class ReviewData:
    run_dir: Path
    source: Path
    problems: dict[str, dict[str, Any]]  # problem id -> problem fields
    candidates: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # problem id -> candidates, best first
    warnings: list[str] = field(default_factory=list)

    @property
    def problem_ids(self) -> list[str]:
        return list(self.problems)

    def candidate_ids(self, problem_id: str) -> list[str]:
        return [c["candidate_id"] for c in self.candidates.get(problem_id, [])]

    def summary(self, problem_id: str, decision: dict | None) -> dict[str, Any]:
        problem = self.problems[problem_id]
        cands = self.candidates[problem_id]
        levels = [c["quality_level"] for c in cands if isinstance(c.get("quality_level"), int)]
        scores = [c["quality_score"] for c in cands if isinstance(c.get("quality_score"), (int, float))]
        accepted_index = None
        if decision and decision.get("action") == "accept":
            ids = self.candidate_ids(problem_id)
            if decision.get("candidate_id") in ids:
                accepted_index = ids.index(decision["candidate_id"]) + 1
        preview = " ".join(str(problem.get("problem") or "").split())
        return {
            "id": problem_id,
            "preview": preview[:160] + ("…" if len(preview) > 160 else ""),
            "subject": problem.get("subject"),
            "level": problem.get("level"),
            "difficulty_tier": problem.get("difficulty_tier"),
            "quality_level": max(levels) if levels else None,
            "best_score": max(scores) if scores else None,
            "n_candidates": len(cands),
            "models": sorted({str(c.get("candidate_model")) for c in cands}),
            "decision": decision,
            "accepted_index": accepted_index,
        }

    def detail(self, problem_id: str, decision: dict | None) -> dict[str, Any]:
        return {
            "problem": self.problems[problem_id],
            "candidates": self.candidates[problem_id],
            "decision": decision,
        }


def _sort_key(candidate: dict[str, Any]) -> tuple:
    score = candidate.get("quality_score")
    return (-(score if isinstance(score, (int, float)) else float("-inf")), str(candidate["candidate_id"]))


def load_review_data(run_dir: str | Path) -> ReviewData:
    """Candidates of RUN grouped by problem (problems in first-seen order; candidates best quality first)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        hint = f"make one with `limo curate RECIPE.yaml --out {run_dir}`"
        raise LimoError(f"{run_dir}: run directory not found ({hint})")
    source = run_dir / SCORE_STAGE_DIR / "data.parquet"
    if not source.exists():
        raise LimoError(
            f"{run_dir}: this run has no candidates to review yet ({source} not found). Run the curation through "
            f"the score stage first: `limo curate RECIPE.yaml --out {run_dir}`."
        )
    import pyarrow.parquet as pq

    from limo.records import assistant_text

    try:
        table = pq.read_table(source)
    except Exception as e:  # a half-written or foreign file
        raise InputError(f"cannot read the candidates table ({e})", path=str(source)) from e
    if table.num_rows == 0:
        verify_stats = run_dir / "07_verify" / "stats.json"
        why = f"; see {verify_stats} (dropped_by_reason) for why" if verify_stats.exists() else ""
        raise LimoError(f"{source}: 0 candidates: every candidate was dropped before scoring{why}. Nothing to review.")
    for column in REQUIRED_COLUMNS:
        if column not in table.column_names:
            raise InputError("missing column in the candidates table", path=str(source), field=column)

    problems: dict[str, dict[str, Any]] = {}
    candidates: dict[str, list[dict[str, Any]]] = {}
    seen: set[str] = set()
    for row_no, row in enumerate(table.to_pylist(), start=1):
        pid, cid = row["id"], row["candidate_id"]
        if not isinstance(pid, str) or not isinstance(cid, str):
            raise InputError("id and candidate_id must be strings", path=str(source), line=row_no)
        if cid in seen:
            raise InputError(f"duplicate candidate_id {cid!r}", path=str(source), line=row_no, field="candidate_id")
        seen.add(cid)
        if pid not in problems:
            problems[pid] = _clean({k: row.get(k) for k in PROBLEM_COLUMNS if k in row})
            candidates[pid] = []
        # the evidence spans index the assistant text the score stage scored (and export trains on):
        # `<think>reasoning</think>` + response when the reasoning was kept apart, else the response
        text = assistant_text(row.get("reasoning"), row.get("response") or "")
        cand = _clean({k: row.get(k) for k in CANDIDATE_COLUMNS if k in row})
        cand.pop("response", None)
        cand.pop("reasoning", None)
        cand["text"] = text
        cand["has_reasoning"] = bool(row.get("reasoning"))
        cand["evidence"], cand["evidence_error"] = parse_evidence(row.get("evidence"), len(text))
        candidates[pid].append(cand)
    for pid in candidates:
        candidates[pid].sort(key=_sort_key)
        for index, cand in enumerate(candidates[pid], start=1):
            cand["index"] = index
    warnings = []
    if not (source.parent / "done").exists():
        warnings.append(
            f"{source.parent} has no done marker: the score stage did not finish (or is running); "
            "showing the candidates written so far"
        )
    return ReviewData(run_dir=run_dir, source=source, problems=problems, candidates=candidates, warnings=warnings)
