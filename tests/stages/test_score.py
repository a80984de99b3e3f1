"""Stage 08 score: both profiles on real traces, rule/quality scores, L1-L5, and the LLM judge run for real against a
scripted OpenAI-compatible server (prompt, parse, blend, saved replies)."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from helpers_curation2 import as_dataset, context  # noqa: E402
from scripted_openai import ScriptedOpenAI, chat_reply  # noqa: E402

from limo.config import build  # noqa: E402
from limo.errors import LimoError  # noqa: E402
from limo.quality import FEATURES  # noqa: E402
from limo.quality_limo import LIMO_FEATURES, LIMO_WEIGHTS  # noqa: E402
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


class ScriptedJudge(ScriptedOpenAI):
    """A real OpenAI-compatible chat-completions server on 127.0.0.1 that answers with fixed replies: each request
    gets the reply of the first marker found in its prompt (else `default`). It records every prompt it saw."""

    def __init__(self, replies: dict[str, str], default: str = "No comment."):
        self.replies, self.default, self.prompts = replies, default, []
        super().__init__(self._reply, model="scripted-judge")

    def _reply(self, request: dict) -> dict:
        prompt = "\n".join(m["content"] for m in request["messages"])
        self.prompts.append(prompt)
        reply = next((r for marker, r in self.replies.items() if marker in prompt), self.default)
        return chat_reply(reply, {"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59}, "scripted-judge")


def judge_config(base_url: str, **extra) -> score.Config:
    spec = {"engine": {"model": "scripted-judge", "engine": "openai", "base_url": base_url, "max_retries": 0}}
    return build(score.Config, {"judge": spec, **extra}, "score")


def test_judge_replies_are_blended_parsed_and_saved(tmp_path, shared_data):
    """The judge runs for real over HTTP: parsed scores are blended into quality_score, an unparsable reply leaves
    the rule score alone and is counted, and every reply is kept (column + judge_replies.jsonl)."""
    cands = trace_candidates(shared_data, 3)
    replies = [
        "Every step is justified and the result is substituted back.\nScore: 9",
        "I would rather not put a number on this one.",
        "Thin and repetitive. Score: 2/10",
    ]
    script = {c["problem"][:60]: r for c, r in zip(cands, replies, strict=True)}
    with ScriptedJudge(script) as judge:
        ctx = context(tmp_path, "08_score")
        result = score.run(as_dataset(cands), judge_config(judge.base_url, judge_weight=0.4), ctx)
    assert len(judge.prompts) == 3 and all("Score: N" in p for p in judge.prompts)
    rows = result.kept.to_list()
    assert [r["judge_score"] for r in rows] == [9.0, None, 2.0]
    assert [r["judge_reply"] for r in rows] == replies
    for row in rows:
        rule, j = row["rule_score"], row["judge_score"]
        expected = rule if j is None else 0.6 * rule + 0.4 * (j - 1) / 9
        assert row["quality_score"] == pytest.approx(expected)
    assert rows[0]["quality_score"] != pytest.approx(rows[0]["rule_score"])  # the blend really moved it
    assert result.stats["judged"] == 2 and result.stats["judge_unparsed"] == 1
    saved = [json.loads(line) for line in (ctx.stage_dir / score.JUDGE_REPLIES).read_text().splitlines()]
    assert [s["candidate_id"] for s in saved] == [c["candidate_id"] for c in cands]
    assert [s["reply"] for s in saved] == replies and [s["judge_score"] for s in saved] == [9.0, None, 2.0]
    assert result.stats["judge_replies_file"] == score.JUDGE_REPLIES


def test_judge_can_reorder_quality_levels(tmp_path, shared_data):
    """With judge_weight 1 the quality score is the judge's alone: the levels follow the judge, not the rules."""
    cands = trace_candidates(shared_data, 5)
    verdicts = [1, 10, 4, 7, 2]
    script = {c["problem"][:60]: f"Verdict follows.\nScore: {v}" for c, v in zip(cands, verdicts, strict=True)}
    with ScriptedJudge(script) as judge:
        cfg = judge_config(judge.base_url, judge_weight=1.0, levels="quantile")
        result = score.run(as_dataset(cands), cfg, context(tmp_path, "08_score"))
    rows = result.kept.to_list()
    assert [r["quality_score"] for r in rows] == pytest.approx([(v - 1) / 9 for v in verdicts])
    assert [r["quality_level"] for r in rows] == [1, 5, 3, 4, 2]


def test_limo_profile_is_the_papers_weighted_formula(tmp_path, shared_data):
    """profile: limo = 0.30 length + 0.20 verification + 0.25 exploration + 0.25 connectives, each min-max scaled
    over the scored set; levels by quintile; features named as in the paper."""
    cands = trace_candidates(shared_data, 10)
    cfg = build(score.Config, {"profile": "limo"}, "score")
    assert cfg.levels == "quantile" and cfg.weights == LIMO_WEIGHTS
    result = score.run(as_dataset(cands), cfg, context(tmp_path, "08_score"))
    rows = result.kept.to_list()
    for row in rows:
        f = row["features"]
        assert set(f) == set(LIMO_FEATURES) and all(0 <= v <= 1 for v in f.values())
        expected = (
            0.30 * f["elaborated_reasoning"]
            + 0.20 * f["self_verification"]
            + 0.25 * f["exploratory_approach"]
            + 0.25 * f["adaptive_granularity"]
        )
        assert row["rule_score"] == pytest.approx(expected)
    words = [len(assistant_text(c["reasoning"], c["response"]).split()) for c in cands]
    longest = max(range(len(words)), key=lambda i: words[i])
    assert rows[longest]["features"]["elaborated_reasoning"] == 1.0
    assert min(r["features"]["elaborated_reasoning"] for r in rows) == 0.0
    assert sorted(result.stats["levels"].values()) == [2, 2, 2, 2, 2]
    with pytest.raises(LimoError, match="unknown feature.*profile limo"):
        build(score.Config, {"profile": "limo", "weights": {"truncation": 1.0}}, "score")
    with pytest.raises(LimoError, match="levels: fixed with profile limo"):
        build(score.Config, {"profile": "limo", "levels": "fixed"}, "score")
    assert build(score.Config, {"profile": "limo", "levels": "fixed", "thresholds": [0.2, 0.4, 0.6, 0.8]}, "score")
