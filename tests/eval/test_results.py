"""Per-benchmark numbers from sample records: response stats, the boxed score beside extended, producers.

.venv/bin/pytest tests/eval/test_results.py
"""

import pytest

from limo.eval.results import benchmark_results, producers_summary, response_stats

HF = {"engine": "hf", "model": "smollm2-135m", "revision": "a"}
OPENAI = {"engine": "openai", "model": "smollm2-135m", "revision": "a"}


def _sample(i, verdict, boxed_verdict, has_box, tokens, finish, producer=HF):
    return {"problem_id": f"p{i}", "sample_index": 0, "verdict": verdict, "correct": verdict == "correct",
            "extracted": None if verdict == "no_answer" else "1", "rule": "extended", "boxed_verdict": boxed_verdict,
            "has_box": has_box, "completion_tokens": tokens, "finish_reason": finish, "subject": None, "level": None,
            "producer": producer}  # fmt: skip


def test_response_stats_and_boxed_score_beside_extended():
    samples = [
        _sample(0, "correct", "correct", True, 10, "stop"),
        _sample(1, "correct", "no_answer", False, 20, "stop"),  # credited in prose only
        _sample(2, "no_answer", "no_answer", False, 30, "length"),
        _sample(3, "incorrect", "incorrect", True, 100, "stop"),
    ]
    stats = response_stats(samples)
    assert stats["no_answer_rate"] == 0.25 and stats["boxed_rate"] == 0.5 and stats["truncation_rate"] == 0.25
    assert stats["mean_completion_tokens"] == 40 and stats["p95_completion_tokens"] == pytest.approx(89.5)
    out = benchmark_results(samples, 1)
    assert out["score"]["value"] == 0.5 and out["boxed_score"]["value"] == 0.25
    assert out["boxed_score"]["metric"] == "pass@1" and out["boxed_score"]["ci_method"] == "wilson"
    assert "judge" not in out


def test_producers_are_aggregated_and_mixed_is_flagged():
    one = producers_summary([_sample(0, "correct", "correct", True, 1, "stop")] * 3)
    assert one == {"producers": [{"producer": HF, "samples": 3}], "mixed": False, "unknown_samples": 0}
    mixed = producers_summary(
        [_sample(0, "correct", "correct", True, 1, "stop")] * 2
        + [_sample(1, "correct", "correct", True, 1, "stop", producer=OPENAI)]
        + [_sample(2, "correct", "correct", True, 1, "stop", producer=None)]
    )
    assert mixed["mixed"] and mixed["unknown_samples"] == 1
    assert [p["samples"] for p in mixed["producers"]] == [2, 1, 1] and mixed["producers"][0]["producer"] == HF


def test_generation_errors_are_counted_by_reason_not_graded():
    samples = [
        _sample(0, "correct", "correct", True, 10, "stop"),
        _sample(1, "generation_error", None, False, 0, "error"),
    ]
    samples[1]["error"] = "prompt_too_long"
    out = benchmark_results(samples, 1)
    assert out["generation_errors"] == {"prompt_too_long": 1}
    assert out["verdicts"] == {"correct": 1, "generation_error": 1} and out["score"]["value"] == 0.5
