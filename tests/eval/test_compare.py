"""`limo compare` on eval output directories built with the real results code (benchmark_results).

.venv/bin/pytest tests/eval/test_compare.py
"""

import json

import pytest

from limo.errors import InputError, LimoError
from limo.eval.compare import compare_runs, sign_flip_pvalue
from limo.eval.results import benchmark_results
from limo.io import write_json, write_jsonl


def make_run(path, model, bench_correct: dict[str, list[list[bool]]]):
    samples, benches = [], {}
    for bench, per_problem in bench_correct.items():
        bs = []
        for i, verdicts in enumerate(per_problem):
            for j, ok in enumerate(verdicts):
                bs.append({
                    "benchmark": bench, "problem_id": f"p{i}", "sample_index": j, "answer": "1", "subject": None,
                    "level": None, "response": "", "extracted": "1" if ok else "2", "verdict": "correct" if ok else
                    "incorrect", "correct": ok, "completion_tokens": 10, "finish_reason": "stop",
                })  # fmt: skip
        benches[bench] = benchmark_results(bs, len(per_problem[0]))
        samples += bs
    path.mkdir(parents=True)
    write_jsonl(path / "samples.jsonl", samples)
    write_json(path / "results.json", {"model": model, "benchmarks": benches})
    return path


def test_sign_flip_exact_and_sampled():
    assert sign_flip_pvalue([1.0, 1.0, 1.0]) == pytest.approx(2 / 8)
    assert sign_flip_pvalue([0.0, 0.0]) == 1.0
    assert sign_flip_pvalue([1.0, -1.0]) == 1.0
    p = sign_flip_pvalue([1.0] * 30, seed=1)
    assert p < 0.001 and p == sign_flip_pvalue([1.0] * 30, seed=1)


def test_compare_two_runs(tmp_path):
    a = make_run(tmp_path / "a", "base", {"math500": [[False]] * 20 + [[True]] * 10, "aime24": [[False]] * 5})
    b = make_run(tmp_path / "b", "tuned", {"math500": [[True]] * 25 + [[False]] * 5, "aime24": [[False]] * 5})
    out = compare_runs([a, b], tmp_path / "cmp")
    m = out["benchmarks"]["math500"]["paired"][0]
    assert m["common_problems"] == 30
    assert m["mean_a"] == pytest.approx(10 / 30) and m["mean_b"] == pytest.approx(25 / 30)
    assert m["diff"] == pytest.approx(15 / 30)
    assert (m["wins"], m["losses"], m["ties"]) == (20, 5, 5)
    assert m["diff_ci"][0] > 0 and m["p_value"] < 0.05
    assert out["benchmarks"]["aime24"]["paired"][0]["p_value"] == 1.0
    for ext in ("json", "md", "png"):
        assert (tmp_path / "cmp" / f"compare.{ext}").stat().st_size > 0
    assert json.loads((tmp_path / "cmp" / "compare.json").read_text())["models"] == ["base", "tuned"]
    assert (tmp_path / "cmp" / "compare.png").read_bytes()[:4] == b"\x89PNG"
    assert "| math500 |" in (tmp_path / "cmp" / "compare.md").read_text()


def test_compare_errors(tmp_path):
    a = make_run(tmp_path / "a", "x", {"math500": [[True]]})
    with pytest.raises(LimoError):
        compare_runs([a])
    with pytest.raises(InputError):
        compare_runs([a, tmp_path / "missing"])
    c = make_run(tmp_path / "c", "y", {"gaokao": [[True]]})
    with pytest.raises(LimoError):
        compare_runs([a, c])
