"""Stage 09 `select`: the best verified candidate per problem, up to `target_size` problems (LIMO §3: 817).

Order within a problem (deterministic, documented so reruns pick the same row):
    1. a candidate a human accepted (RUN/review/decisions.jsonl, action "accept") wins outright;
    2. higher quality_score;
    3. shorter text, when `prefer_shorter` (same quality, fewer tokens to train on);
    4. candidate_id (lexicographic), so exact ties never depend on row order.
Problems are then ranked the same way by their best candidate (human-accepted problems first) and the first
`target_size` are kept. Drop reasons: "human_rejected" (a reviewer rejected the problem), "below_min_level"
(best candidate under `min_quality_level`), "not_best" (a losing candidate), "over_target_size".

Human decisions come from limo.review.decisions.load_decisions (latest accept/reject/clear per problem decides).
`decisions_digest` is filled in by `limo curate` with a hash of the decisions file, so a changed decisions file
reruns this stage instead of reusing the cached one.

Run as part of `limo curate RECIPE.yaml --out RUN` (recipe key `select`).
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset

from limo.runs import StageContext, StageResult
from limo.stages.common import to_rows


@dataclass
class Config:
    target_size: int = 817  # LIMO §3: the final LIMO set has 817 problems
    min_quality_level: int = 1
    prefer_shorter: bool = True
    decisions: str | None = None  # path of a decisions file; default RUN/review/decisions.jsonl
    decisions_digest: str = ""  # set by curate: sha256 of the decisions file(s), part of the stage's config hash

    def __post_init__(self):
        if self.target_size < 1:
            raise ValueError(f"target_size must be >= 1, got {self.target_size}")
        if not 1 <= self.min_quality_level <= 5:
            raise ValueError(f"min_quality_level must be in 1..5, got {self.min_quality_level}")


def decisions_file(cfg: Config, run_dir: Path) -> Path:
    from limo.review.decisions import decisions_path

    return Path(cfg.decisions) if cfg.decisions else decisions_path(run_dir)


def decisions_digest(path: Path) -> str:
    """sha256 of the decisions file ("" when there is none)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.exists() else ""


def _length(row: dict) -> int:
    return len(row.get("response") or "") + len(row.get("reasoning") or "")


def candidate_key(row: dict, prefer_shorter: bool, accepted: str | None) -> tuple:
    """Sort key: smaller is better."""
    return (
        0 if accepted is not None and row["candidate_id"] == accepted else 1,
        -float(row["quality_score"]),
        _length(row) if prefer_shorter else 0,
        row["candidate_id"],
    )


def run(ds: Dataset, cfg: Config, ctx: StageContext) -> StageResult:
    from limo.review.decisions import load_decisions

    rows = to_rows(ds)
    path = decisions_file(cfg, ctx.run_dir)
    decisions = {pid: d for pid, d in load_decisions(path).items() if d.action in ("accept", "reject")}
    by_problem: dict[str, list[dict]] = {}
    for row in rows:
        by_problem.setdefault(row["id"], []).append(row)
    dropped: list[dict] = []
    winners: list[tuple[tuple, bool, dict]] = []
    accepted_missing = 0
    for pid, cands in by_problem.items():
        decision = decisions.get(pid)
        if decision is not None and decision.action == "reject":
            dropped += [{**c, "drop_reason": "human_rejected"} for c in cands]
            continue
        accepted = decision.candidate_id if decision is not None and decision.action == "accept" else None
        if accepted is not None and all(c["candidate_id"] != accepted for c in cands):
            accepted_missing += 1  # the accepted candidate was dropped upstream (e.g. failed verification)
        human = decision is not None and decision.action == "accept"
        ranked = sorted(cands, key=lambda c, a=accepted: candidate_key(c, cfg.prefer_shorter, a))
        best, rest = ranked[0], ranked[1:]
        dropped += [{**c, "drop_reason": "not_best"} for c in rest]
        if not human and best["quality_level"] < cfg.min_quality_level:
            dropped.append({**best, "drop_reason": "below_min_level"})
            continue
        winners.append((candidate_key(best, cfg.prefer_shorter, best["candidate_id"] if human else None), human, best))
    winners.sort(key=lambda w: (0 if w[1] else 1, w[0][1:]))
    kept = [{**w[2], "human_accepted": w[1]} for w in winners[: cfg.target_size]]
    dropped += [
        {**w[2], "human_accepted": w[1], "drop_reason": "over_target_size"} for w in winners[cfg.target_size :]
    ]
    for row in dropped:
        row.setdefault("human_accepted", False)
    stats = {
        "problems_in": len(by_problem),
        "problems_out": len(kept),
        "target_size": cfg.target_size,
        "decisions_file": str(path) if path.exists() else None,
        "human_accepted": sum(r["human_accepted"] for r in kept),
        "human_rejected_problems": sum(
            1 for d in decisions.values() if d.action == "reject" and d.problem_id in by_problem
        ),
        "accepted_candidate_missing": accepted_missing,
    }
    return StageResult.from_rows(kept, dropped, stats)
