"""The `limo run` report shows no-answer and boxed-answer rates, response lengths and truncation before and after
training, from two eval directories built with the real results code.

.venv/bin/pytest tests/report/test_run_report.py
"""

import json

from limo.eval.results import benchmark_results
from limo.io import write_json, write_jsonl
from limo.report.run_report import write_run_report


def _eval_dir(path, verdicts: list[str], tokens: int, finish: str):
    samples = [
        {"benchmark": "math500", "problem_id": f"p{i}", "sample_index": 0, "answer": "1", "subject": None,
         "level": None, "response": "", "extracted": None if v == "no_answer" else "1", "verdict": v,
         "correct": v == "correct", "rule": "boxed", "boxed_verdict": v, "has_box": v != "no_answer",
         "completion_tokens": tokens, "finish_reason": finish}
        for i, v in enumerate(verdicts)
    ]  # fmt: skip
    result = benchmark_results(samples, 1)
    result["protocol"] = {"grading": "boxed", "temperature": 0.0}
    path.mkdir(parents=True)
    write_jsonl(path / "samples.jsonl", samples)
    write_json(path / "results.json", {"model": "m", "benchmarks": {"math500": result}})


def test_report_shows_what_changed_before_and_after(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    write_json(run / "summary.json", [{"stage": "export", "rows_in": 4, "rows_out": 4}])
    _eval_dir(run / "eval" / "base", ["no_answer", "no_answer", "no_answer", "incorrect"], 64, "length")
    _eval_dir(run / "eval" / "tuned", ["correct", "no_answer", "incorrect", "incorrect"], 40, "stop")
    summary = write_run_report(run, "t", "m", {"steps": 2, "losses": []}, {"train": 1.0})
    text = (run / "report.md").read_text()
    assert "## What changed besides the score" in text
    assert "| math500 | no answer | 75.0% | 25.0% |" in text
    assert "| math500 | boxed answer | 25.0% | 75.0% |" in text
    assert "| math500 | mean response tokens | 64 | 40 |" in text
    assert "| math500 | truncated | 100.0% | 0.0% |" in text
    assert summary["tuned"]["math500"]["value"] == 0.25
    assert json.loads((run / "report" / "compare.json").read_text())["benchmarks"]["math500"]
