"""Stage 06 solutions: candidates from pool columns, from a model (real SmolLM2), reasoning kept apart."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from helpers_curation2 import as_dataset, context, math_train_rows  # noqa: E402

from limo.config import build  # noqa: E402
from limo.engines.base import Completion, EngineConfig, SamplingParams, request_key  # noqa: E402
from limo.engines.cache import GenerationCache  # noqa: E402
from limo.errors import LimoError  # noqa: E402
from limo.stages import solutions  # noqa: E402
from limo.stages.common import ModelSpec, problem_prompt  # noqa: E402


def test_split_reasoning_on_a_real_sky_t1_trace(shared_data):
    rows = [json.loads(x) for x in (shared_data / "traces" / "sky_t1_math_correct_5k_14b_amc23.jsonl").open()]
    row = next(r for r in rows if r["finished"] and "<|begin_of_thought|>" in r["trace"])
    reasoning, response = solutions.split_reasoning(row["trace"])
    assert reasoning and response
    assert "<|" not in response and "\\boxed" in response
    assert len(reasoning) > len(response)
    assert solutions.split_reasoning("<think>a</think>\n\nb") == ("a", "b")
    assert solutions.split_reasoning("plain") == (None, "plain")
    assert solutions.assistant_text("r", "x") == "<think>\nr\n</think>\n\nx"
    assert solutions.assistant_text(None, "x") == "x"


def test_column_candidates_expand_rows(tmp_path, shared_data):
    rows = math_train_rows(shared_data, 5)
    rows[2]["solution"] = "   "  # an empty reference: no candidate from it
    cfg = build(solutions.Config, {"columns": ["solution"]}, "solutions")
    result = solutions.run(as_dataset(rows), cfg, context(tmp_path, "06_solutions"))
    assert result.stats["expands_rows"] is True
    assert len(result.kept) == 4 and len(result.dropped) == 1
    assert result.dropped[0]["drop_reason"] == "no_candidates" and result.dropped[0]["id"] == rows[2]["id"]
    cand = result.kept[0]
    assert cand["candidate_id"] == f"{rows[0]['id']}#column:solution#0"
    assert cand["candidate_model"] == "column:solution"
    assert cand["response"] == rows[0]["solution"] and cand["reasoning"] is None
    assert cand["finish_reason"] == "stop" and cand["completion_tokens"] > 0
    for key in ("problem", "answer", "subject", "level", "source"):
        assert cand[key] == rows[0][key]


def test_config_errors():
    with pytest.raises(LimoError, match="at least one model or one column"):
        build(solutions.Config, {"columns": []}, "solutions")
    with pytest.raises(LimoError, match="unique"):
        build(solutions.Config, {"models": [{"engine": {"model": "smollm2-135m"}}] * 2, "columns": []}, "solutions")
    with pytest.raises(LimoError, match="unknown key"):
        build(solutions.Config, {"modles": []}, "solutions")


def test_missing_column_is_a_clear_error(tmp_path, shared_data):
    cfg = build(solutions.Config, {"columns": ["openr1_trace"]}, "solutions")
    with pytest.raises(LimoError, match="openr1_trace"):
        solutions.run(as_dataset(math_train_rows(shared_data, 2)), cfg, context(tmp_path, "06_solutions"))


def test_engine_reasoning_kept_apart(tmp_path, shared_data):
    """An R1-style server returns reasoning_content + answer; the cache holds exactly what it returned, so the stage
    runs through the real cache path with no server (the backend is only built on a miss)."""
    rows = math_train_rows(shared_data, 2)
    spec = ModelSpec(
        engine=EngineConfig(model="deepseek-r1", engine="openai", base_url="http://127.0.0.1:9/v1"),
        sampling=SamplingParams(temperature=0.6, max_tokens=64),
        n=2,
    )
    cache = GenerationCache(tmp_path / "gen.sqlite")
    items = []
    for row in rows:
        for j in range(2):
            key = request_key("deepseek-r1", problem_prompt(row["problem"]), spec.sampling, j)
            items.append(
                (
                    key,
                    Completion(
                        f"So the answer is \\boxed{{{row['answer']}}}.",
                        10,
                        40,
                        "stop",
                        reasoning=f"thinking about {row['id']} sample {j}",
                    ),
                )
            )
    cache.put_many("deepseek-r1", items)
    cfg = solutions.Config(models=[spec], columns=[])
    result = solutions.run(as_dataset(rows), cfg, context(tmp_path, "06_solutions"))
    assert len(result.kept) == 4
    first = result.kept[0]
    assert first["candidate_id"] == f"{rows[0]['id']}#deepseek-r1#0"
    assert first["reasoning"] == f"thinking about {rows[0]['id']} sample 0"
    assert first["response"].startswith("So the answer is") and first["completion_tokens"] == 40
    assert result.stats["engines"]["deepseek-r1"]["cache_hits"] == 4
    assert result.stats["with_reasoning"] == 4


@pytest.mark.slow
def test_real_smollm2_candidates_and_reference_solutions(tmp_path, shared_data):
    rows = math_train_rows(shared_data, 2)
    cfg = build(
        solutions.Config,
        {
            "models": [
                {
                    "engine": {"model": "smollm2-135m", "engine": "hf"},
                    "sampling": {"temperature": 0.7, "max_tokens": 24, "seed": 1},
                    "n": 2,
                }
            ],
            "columns": ["solution"],
        },
        "solutions",
    )
    result = solutions.run(as_dataset(rows), cfg, context(tmp_path, "06_solutions"))
    assert result.stats["candidates_by_source"] == {"column:solution": 2, "smollm2-135m": 4}
    model_rows = [r for r in result.kept if r["candidate_model"] == "smollm2-135m"]
    assert all(r["finish_reason"] in ("stop", "length") and r["completion_tokens"] <= 24 for r in model_rows)
    assert all(r["response"] for r in model_rows)
    assert len({r["candidate_id"] for r in result.kept}) == 6
    # rerun: everything comes from the generation cache
    again = solutions.run(as_dataset(rows), cfg, context(tmp_path, "06_solutions"))
    assert again.stats["engines"]["smollm2-135m"]["cache_hits"] == 4
    assert [r["response"] for r in again.kept] == [r["response"] for r in result.kept]
