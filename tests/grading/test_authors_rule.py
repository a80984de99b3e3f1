"""Rule `boxed` against the authors' grader on the 500 MATH500 Sky-T1 traces in ../shared/data.

tests/data/authors_grader_math500_sky_t1.json holds what GAIR-NLP/LIMO's own eval/utils (@2284c6a) extracted and
decided for each trace (we ran it; docs/GRADING.md says how). Rule `boxed` must read the same answer on every
response that has a box, and both rules' scores are the ones docs/GRADING.md reports.

.venv/bin/pytest tests/grading/test_authors_rule.py
"""

import json
from pathlib import Path

import pytest

from limo.grading import boxed_answer, grade_many

TRACES = "sky_t1_math_correct_5k_27b_math500.jsonl"
AUTHORS = json.loads((Path(__file__).parents[1] / "data" / "authors_grader_math500_sky_t1.json").read_text())["rows"]


@pytest.fixture(scope="module")
def traces(shared_data):
    rows = [json.loads(line) for line in (shared_data / "traces" / TRACES).open()]
    bench = [json.loads(line) for line in (shared_data / "benchmarks" / "math500.jsonl").open()]
    golds = {b["id"]: b["answer"] for b in bench}
    assert [r["benchmark_id"] for r in rows] == [a["id"] for a in AUTHORS]
    return [(r["trace"], golds[r["benchmark_id"]]) for r in rows]


def test_boxed_rule_reads_the_authors_answer_on_every_boxed_response(traces):
    boxed = [a for a in AUTHORS if a["has_boxed"]]
    assert len(boxed) == 236
    same = sum(
        boxed_answer(t) == a["pred"].strip() for (t, _), a in zip(traces, AUTHORS, strict=True) if a["has_boxed"]
    )
    assert same == 236
    assert all(boxed_answer(t) is None for (t, _), a in zip(traces, AUTHORS, strict=True) if not a["has_boxed"])


def test_boxed_and_extended_scores_and_the_verdict_differences(traces):
    boxed = grade_many(traces, timeout_s=10, workers=2, rule="boxed")
    ext = grade_many(traces, timeout_s=10, workers=2, rule="extended")
    assert sum(g.correct for g in boxed) == 216  # 43.2%
    assert sum(g.correct for g in ext) == 292  # 58.4%
    assert sum(g.boxed_verdict == "correct" for g in ext) == 216  # the boxed score beside an extended one
    assert sum(a["correct"] for a in AUTHORS) == 209  # the authors' grader: 41.8%
    differ = [a["id"] for g, a in zip(boxed, AUTHORS, strict=True) if a["has_boxed"] and g.correct != a["correct"]]
    # same extraction; the authors' comparison rejects these equivalent answers (docs/GRADING.md lists them)
    assert sorted(differ) == sorted([
        "test/geometry/473.json", "test/precalculus/768.json", "test/intermediate_algebra/690.json",
        "test/prealgebra/1865.json", "test/intermediate_algebra/1992.json", "test/algebra/101.json",
        "test/intermediate_algebra/1102.json", "test/prealgebra/1114.json",
    ])  # fmt: skip
    assert all(g.correct and not a["correct"] for g, a in zip(boxed, AUTHORS, strict=True) if a["id"] in differ)
