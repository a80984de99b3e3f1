"""Stage 08 score: features + evidence on real traces, rule/quality scores, L1-L5, the LLM-judge prompt and parser."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from helpers_curation2 import as_dataset, context  # noqa: E402

from limo.errors import LimoError  # noqa: E402
from limo.quality import FEATURES  # noqa: E402
from limo.recipes import build  # noqa: E402
from limo.stages import score  # noqa: E402
from limo.stages.solutions import assistant_text, split_reasoning  # noqa: E402


def trace_candidates(shared_data: Path, n: int) -> list[dict]:
    rows = [json.loads(x) for x in (shared_data / "traces" / "sky_t1_math_correct_5k_14b_amc23.jsonl").open()]
    out = []
    for r in rows[:n]:
        reasoning, response = split_reasoning(r["trace"])
        out.append(
            {
                "id": r["benchmark_id"],
                "problem": r["problem"],
                "answer": r["answer"],
                "solution": None,
                "source": "amc23",
                "subject": None,
                "level": None,
                "weak_pass_rate": 0.25,
                "candidate_id": f"{r['benchmark_id']}#sky#0",
                "candidate_model": "sky",
                "response": response,
                "reasoning": reasoning,
                "finish_reason": "stop" if r["finished"] else "length",
                "completion_tokens": len(r["trace"]) // 4,
                "finished": r["finished"],
            }
        )
    return out


def test_score_stage_on_real_traces(tmp_path, shared_data):
    cands = trace_candidates(shared_data, 8)
    result = score.run(as_dataset(cands), score.Config(), context(tmp_path, "08_score"))
    assert len(result.kept) == 8 and len(result.dropped) == 0
    for row, cand in zip(result.kept, cands, strict=True):
        assert set(row["features"]) == set(FEATURES)
        assert all(0 <= v <= 1 for v in row["features"].values())
        text = assistant_text(cand["reasoning"], cand["response"])
        ev = json.loads(row["evidence"])
        assert all(0 <= s < e <= len(text) for spans in ev.values() for s, e in spans)
        assert row["judge_score"] is None and row["quality_score"] == row["rule_score"]
        assert 1 <= row["quality_level"] <= 5
        if cand["finish_reason"] == "length":
            assert row["features"]["truncation"] == 0.0
    finished = [r["rule_score"] for r, c in zip(result.kept, cands, strict=True) if c["finished"]]
    cut = [r["rule_score"] for r, c in zip(result.kept, cands, strict=True) if not c["finished"]]
    assert finished and cut and min(finished) > max(cut)
    assert sum(result.stats["levels"].values()) == 8


def test_quantile_levels_and_custom_weights(tmp_path, shared_data):
    cands = trace_candidates(shared_data, 10)
    cfg = build(score.Config, {"levels": "quantile"}, "score")
    result = score.run(as_dataset(cands), cfg, context(tmp_path, "08_score"))
    levels = result.kept["quality_level"]
    assert min(levels) == 1 and max(levels) == 5
    # a higher score never gets a lower level
    pairs = sorted(zip(result.kept["quality_score"], levels, strict=True))
    assert [lv for _, lv in pairs] == sorted(lv for _, lv in pairs)
    only_truncation = build(score.Config, {"weights": {"truncation": 1.0}}, "score")
    result = score.run(as_dataset(cands), only_truncation, context(tmp_path, "08_score"))
    for row in result.kept:
        assert row["rule_score"] == pytest.approx(row["features"]["truncation"])


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("The reasoning is clear and checks the result.\nScore: 8", 8.0),
        ("Good work overall. **Score: 7/10**", 7.0),
        ("I would give it a score of 6 out of 10.", 6.0),
        ("Rating: 9", 9.0),
        ("Solid. 4/10 because it skips steps.", 4.0),
        ("<think>maybe Score: 2</think>\nFinal verdict. Score: 9", 9.0),
        ("Justification first.\n\n**5**", 5.0),
        ("Score: 7.5", 7.5),
        ("Score: 11", None),
        ("Score: 0", None),
        ("I cannot rate this.", None),
        ("", None),
        ("Steps 1 and 2 are fine, step 3 is wrong.", None),
    ],
)
def test_parse_judge_score(reply, expected):
    assert score.parse_judge_score(reply) == expected


def test_judge_prompt_has_rubric_problem_and_clipped_solution():
    msgs = score.judge_messages("What is 1+1?", "x" * 50_000, max_chars=1000)
    assert [m["role"] for m in msgs] == ["system", "user"]
    user = msgs[1]["content"]
    assert "What is 1+1?" in user and "Score: N" in user and "Self-verification" in user
    assert "characters omitted" in user and len(user) < 3000
    assert score.clip_middle("abc", 10) == "abc"


def test_config_validation():
    with pytest.raises(LimoError, match="unknown feature"):
        build(score.Config, {"weights": {"brilliance": 1.0}}, "score")
    with pytest.raises(LimoError, match="thresholds"):
        build(score.Config, {"thresholds": [0.5, 0.4, 0.6, 0.7]}, "score")
    with pytest.raises(LimoError, match="judge_weight"):
        build(score.Config, {"judge_weight": 2}, "score")
    with pytest.raises(LimoError, match="length_words"):
        build(score.Config, {"length_words": [300, 40, 8000]}, "score")


@pytest.mark.slow
def test_real_judge_run_with_smollm2(tmp_path, shared_data):
    """One small real judge run: SmolLM2 is a weak judge; its replies must flow through prompt -> parse -> blend."""
    cands = trace_candidates(shared_data, 2)
    for c in cands:  # keep the prompt short for the CPU
        c["reasoning"] = None
        c["response"] = c["response"][:600]
    cfg = build(
        score.Config,
        {
            "judge": {"engine": {"model": "smollm2-135m", "engine": "hf"}, "sampling": {"max_tokens": 32}},
            "judge_weight": 0.5,
            "judge_max_chars": 800,
        },
        "score",
    )
    result = score.run(as_dataset(cands), cfg, context(tmp_path, "08_score"))
    assert result.stats["judged"] + result.stats["judge_unparsed"] == 2
    for row in result.kept:
        j = row["judge_score"]
        if j is None:
            assert row["quality_score"] == row["rule_score"]
        else:
            assert 1 <= j <= 10
            assert row["quality_score"] == pytest.approx(0.5 * row["rule_score"] + 0.5 * (j - 1) / 9)
