"""`limo eval` end to end on the real embedded model (CPU), plus EvalConfig from a recipe dict.

.venv/bin/pytest tests/eval/test_run.py
"""

import json

import pytest
from typer.testing import CliRunner

from limo.errors import LimoError
from limo.eval.metrics import pass_at_k, percentile, wilson_ci
from limo.eval.run import EvalConfig


def test_eval_config_from_recipe_dict():
    cfg = EvalConfig.from_dict(
        {"model": "smollm2-135m", "engine": {"engine": "hf", "batch_size": 4}, "benchmarks": "math500,aime24",
         "protocol": "limo-v3", "max_tokens": 128, "limit": 3}
    )  # fmt: skip
    assert cfg.engine.batch_size == 4 and cfg.engine.model == "smollm2-135m"
    assert cfg.benchmarks == ["math500", "aime24"]
    assert cfg.benchmark_protocol("aime24").n == 4 and cfg.benchmark_protocol("math500").n == 1
    s = cfg.sampling("aime24")
    assert s.temperature == 0.6 and s.max_tokens == 128
    assert EvalConfig.from_dict({"n": 4, "temperature": 0.5}).sampling("math500").temperature == 0.5
    with pytest.raises(LimoError):
        EvalConfig.from_dict({"nope": 1})
    with pytest.raises(LimoError):
        EvalConfig.from_dict({"protocol": "unknown"})


@pytest.mark.slow
@pytest.mark.timeout(3600)  # CPU generation; the shared 2-core dev box can be heavily loaded
def test_limo_eval_end_to_end(tmp_path, shared_data):
    from limo.cli import app

    out, cache = tmp_path / "ev", tmp_path / "gen.sqlite"
    args = ["eval", "--model", "smollm2-135m", "--benchmarks", "math500", "--limit", "20", "--max-tokens", "32",
            "--out", str(out), "--cache", str(cache), "--batch-size", "10"]  # fmt: skip
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    results = json.loads((out / "results.json").read_text())
    samples = [json.loads(line) for line in (out / "samples.jsonl").open()]
    assert (out / "results.md").read_text().startswith("# Evaluation")
    b = results["benchmarks"]["math500"]
    assert len(samples) == 20 and b["problems"] == 20 and b["n"] == 1 and b["samples_per_problem"] == 1
    assert results["generation"]["generated"] == 20
    assert results["versions"]["math-verify"] and results["versions"]["torch"] and results["model"] == "smollm2-135m"
    assert b["protocol"]["max_tokens"] == 32 and b["protocol"]["temperature"] == 0.0
    assert b["protocol"]["overrides"] == {"max_tokens_cap": 32} and b["protocol"]["grading"] == "extended"
    assert b["no_answer_rate"] == pytest.approx(sum(s["verdict"] == "no_answer" for s in samples) / 20)
    assert b["boxed_rate"] == pytest.approx(sum(s["has_box"] for s in samples) / 20)
    assert b["boxed_score"]["value"] == pytest.approx(sum(s["boxed_verdict"] == "correct" for s in samples) / 20)

    # recompute every headline number from samples.jsonl
    correct = sum(s["correct"] for s in samples)
    assert b["score"]["value"] == pytest.approx(correct / 20)
    assert b["score"]["ci"] == pytest.approx(list(wilson_ci(correct, 20)))
    assert b["pass@k"]["1"]["value"] == pytest.approx(sum(pass_at_k(1, int(s["correct"]), 1) for s in samples) / 20)
    tokens = [s["completion_tokens"] for s in samples]
    assert b["mean_completion_tokens"] == pytest.approx(sum(tokens) / 20)
    assert b["p95_completion_tokens"] == pytest.approx(percentile(tokens, 95))
    assert b["truncation_rate"] == pytest.approx(sum(s["finish_reason"] == "length" for s in samples) / 20)
    assert all(s["completion_tokens"] <= 32 for s in samples)
    assert sum(b["verdicts"].values()) == 20
    assert sum(v["problems"] for v in b["by_subject"].values()) == 20
    assert sum(v["problems"] for v in b["by_level"].values()) == 20
    from limo.grading import grade_many

    regraded = grade_many([(s["response"], s["answer"]) for s in samples])
    assert [g.verdict for g in regraded] == [s["verdict"] for s in samples]

    # a rerun is answered from the cache: no new generations, same samples
    r2 = CliRunner().invoke(app, args)
    assert r2.exit_code == 0, r2.output
    again = json.loads((out / "results.json").read_text())
    assert again["generation"]["generated"] == 0 and again["generation"]["cache_hits"] == 20
    assert [json.loads(line)["response"] for line in (out / "samples.jsonl").open()] == [
        s["response"] for s in samples
    ]

    # and a compare of the run against itself: zero difference, p = 1
    from limo.eval.compare import compare_runs

    cmp = compare_runs([out, out], tmp_path / "cmp")
    assert cmp["benchmarks"]["math500"]["paired"][0]["diff"] == 0.0
    assert cmp["benchmarks"]["math500"]["paired"][0]["p_value"] == 1.0


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_limo_v3_protocol_per_benchmark_on_the_embedded_model(tmp_path, shared_data):
    """Issue 13 acceptance: one run, aime24 sampled as v3 says (4 at T=0.6), math500 greedy; generation count."""
    from limo.cli import app

    out = tmp_path / "v3"
    args = ["eval", "--protocol", "limo-v3", "--benchmarks", "aime24,math500", "--limit", "2", "--max-tokens", "24",
            "--out", str(out), "--cache", str(tmp_path / "gen.sqlite")]  # fmt: skip
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    results = json.loads((out / "results.json").read_text())
    aime, math = results["benchmarks"]["aime24"], results["benchmarks"]["math500"]
    assert (aime["protocol"]["n"], aime["protocol"]["temperature"], aime["protocol"]["metric"]) == (
        4, 0.6, "unbiased-pass@1"
    )  # fmt: skip
    assert (math["protocol"]["n"], math["protocol"]["temperature"], math["protocol"]["metric"]) == (1, 0.0, "pass@1")
    assert aime["protocol"]["grading"] == math["protocol"]["grading"] == "boxed"
    assert aime["protocol"]["max_tokens"] == 24 and aime["protocol"]["overrides"] == {"max_tokens_cap": 24}
    assert aime["samples"] == 8 and math["samples"] == 2 and results["generation"]["generated"] == 10
    samples = [json.loads(line) for line in (out / "samples.jsonl").open()]
    assert len(samples) == 10 and all(s["rule"] == "boxed" for s in samples)
    assert aime["score"]["metric"] == "avg@4"
    assert sum(p["samples"] for p in results["producers"]["producers"]) == 10
