"""Stage 09 select: best candidate per problem, deterministic ties, target size, human decisions."""

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from helpers_curation2 import as_dataset, context, math_train_rows  # noqa: E402

from limo.config import build  # noqa: E402
from limo.errors import InputError, LimoError  # noqa: E402
from limo.review.decisions import DecisionLog, decisions_path  # noqa: E402
from limo.stages import select  # noqa: E402


def candidates(shared_data: Path, n_problems: int = 4) -> list[dict]:
    """Three candidates per real problem: scores 0.9 / 0.9 (tie, longer) / 0.4 for problem 0, decreasing after."""
    out = []
    for i, r in enumerate(math_train_rows(shared_data, n_problems)):
        base = 0.9 - 0.1 * i
        for k, (q, text) in enumerate(
            [(base, r["solution"]), (base, r["solution"] + "\n\nLet me double-check."), (base - 0.5, r["solution"])]
        ):
            out.append(
                {
                    **r,
                    "candidate_id": f"{r['id']}#m{k}#0",
                    "candidate_model": f"m{k}",
                    "response": text,
                    "reasoning": None,
                    "quality_score": q,
                    "rule_score": q,
                    "quality_level": 5 if q > 0.6 else 2,
                }
            )
    return out


def run(rows, tmp_path, **cfg):
    return select.run(as_dataset(rows), select.Config(**cfg), context(tmp_path, "09_select"))


def test_best_per_problem_ties_are_deterministic(tmp_path, shared_data):
    rows = candidates(shared_data)
    first = run(rows, tmp_path)
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    second = run(shuffled, tmp_path)
    assert first.kept["candidate_id"] == second.kept["candidate_id"]
    # the tie at the top is broken by length: the shorter m0 wins over m1
    assert all(cid.endswith("#m0#0") for cid in first.kept["candidate_id"])
    # problems ordered by their best score
    assert first.kept["quality_score"] == sorted(first.kept["quality_score"], reverse=True)
    assert len(first.kept) == 4 and len(first.dropped) == 8
    assert set(first.dropped["drop_reason"]) == {"not_best"}


def test_tie_without_length_preference_falls_back_to_candidate_id(tmp_path, shared_data):
    rows = candidates(shared_data, 1)
    rows[0]["candidate_id"], rows[1]["candidate_id"] = "p#z", "p#a"
    result = run(rows, tmp_path, prefer_shorter=False)
    assert result.kept["candidate_id"] == ["p#a"]


def test_target_size_and_min_level(tmp_path, shared_data):
    rows = candidates(shared_data, 4)
    result = run(rows, tmp_path, target_size=2)
    assert len(result.kept) == 2
    reasons = result.dropped["drop_reason"]
    assert reasons.count("over_target_size") == 2 and reasons.count("not_best") == 8
    low = [dict(r, quality_level=1) for r in rows]
    result = run(low, tmp_path, min_quality_level=2)
    assert len(result.kept) == 0 and result.dropped["drop_reason"].count("below_min_level") == 4
    assert len(result.dropped) == len(rows)


def test_human_decisions_accept_wins_reject_drops(tmp_path, shared_data):
    rows = candidates(shared_data, 4)
    pids = list(dict.fromkeys(r["id"] for r in rows))
    log = DecisionLog(decisions_path(tmp_path), reviewer="ann")
    log.append(pids[3], "accept", candidate_id=f"{pids[3]}#m2#0")  # the worst candidate of the worst problem
    log.append(pids[0], "reject", note="figure missing")
    log.append(pids[1], "reject")
    log.append(pids[1], "clear")  # withdrawn: back to the score
    result = run(rows, tmp_path, target_size=2)
    kept = result.kept["candidate_id"]
    assert kept[0] == f"{pids[3]}#m2#0"  # accepted: kept first, despite target size and score
    assert kept[1] == f"{pids[1]}#m0#0"
    dropped = {(r["id"], r["drop_reason"]) for r in result.dropped}
    assert (pids[0], "human_rejected") in dropped and (pids[2], "over_target_size") in dropped
    assert sum(r["drop_reason"] == "human_rejected" for r in result.dropped) == 3
    assert result.stats["human_accepted"] == 1 and result.stats["human_rejected_problems"] == 1
    assert result.kept["human_accepted"] == [True, False]
    assert len(result.kept) + len(result.dropped) == len(rows)
    assert select.decisions_digest(decisions_path(tmp_path)) != ""


def test_broken_decisions_line_is_a_clear_error(tmp_path, shared_data):
    path = decisions_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text('{"problem_id": "x", "action": "accept"\n')
    with pytest.raises(InputError, match="line 1"):
        run(candidates(shared_data, 1), tmp_path)


def test_config_validation():
    with pytest.raises(LimoError, match="target_size"):
        build(select.Config, {"target_size": 0}, "select")
    with pytest.raises(LimoError, match="min_quality_level"):
        build(select.Config, {"min_quality_level": 6}, "select")
