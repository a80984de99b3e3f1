"""Stage 07 verify: the shared grader keeps correct candidates and drops the rest by reason."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from helpers_curation2 import as_dataset, context, math_train_rows  # noqa: E402

from limo.config import build  # noqa: E402
from limo.errors import LimoError  # noqa: E402
from limo.stages import verify  # noqa: E402


def candidate(row: dict, kind: str, response: str, finish: str = "stop", reasoning: str | None = None) -> dict:
    return {
        **row,
        "candidate_id": f"{row['id']}#{kind}#0",
        "candidate_model": kind,
        "response": response,
        "reasoning": reasoning,
        "finish_reason": finish,
        "completion_tokens": len(response.split()),
    }


def test_verify_drops_by_reason(tmp_path, shared_data):
    rows = math_train_rows(shared_data, 3)
    cands = []
    for row in rows:
        cands.append(candidate(row, "reference", row["solution"]))  # real reference solution: correct
        cands.append(candidate(row, "wrong", "I think it is \\boxed{123456789}."))
        cands.append(candidate(row, "silent", "I could not finish this problem."))
        cands.append(candidate(row, "cut", row["solution"], finish="length"))  # correct box, but cut off
    # the answer only in the reasoning, empty final part: still graded (from the reasoning)
    cands.append(candidate(rows[0], "r1", "", reasoning=rows[0]["solution"]))
    result = verify.run(as_dataset(cands), verify.Config(), context(tmp_path, "07_verify"))
    kept_models = sorted(result.kept["candidate_model"])
    assert kept_models == ["r1", "reference", "reference", "reference"]
    reasons = {r["candidate_model"]: r["drop_reason"] for r in result.dropped}
    assert reasons == {"wrong": "incorrect", "silent": "no_answer", "cut": "truncated"}
    assert len(result.kept) + len(result.dropped) == len(cands)
    assert all(result.kept["correct"]) and set(result.kept["verdict"]) == {"correct"}
    assert result.stats["by_model"]["reference"] == {"candidates": 3, "correct": 3}
    assert result.stats["graded"] == len(cands) - 3  # truncated ones are not graded


def test_missing_gold_is_dropped_not_graded(tmp_path, shared_data):
    row = {**math_train_rows(shared_data, 1)[0], "answer": None}
    result = verify.run(
        as_dataset([candidate(row, "reference", row["solution"])]), verify.Config(), context(tmp_path, "07_verify")
    )
    assert len(result.kept) == 0 and result.dropped[0]["drop_reason"] == "no_gold"


def test_keep_truncated_when_asked(tmp_path, shared_data):
    row = math_train_rows(shared_data, 1)[0]
    cfg = verify.Config(drop_truncated=False)
    result = verify.run(
        as_dataset([candidate(row, "cut", row["solution"], finish="length")]), cfg, context(tmp_path, "07_verify")
    )
    assert len(result.kept) == 1


def test_config_validation():
    with pytest.raises(LimoError, match="timeout_s"):
        build(verify.Config, {"timeout_s": 0}, "verify")
    with pytest.raises(LimoError, match="workers"):
        build(verify.Config, {"workers": 0}, "verify")
