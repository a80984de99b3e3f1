"""`--plan`: the paper recipes' plans name the published models, samples and thresholds; the bounds are computed
as documented; and a CPU-sized limo-v3 with the embedded model standing in for every model makes at most the
generations its plan allows (slow)."""

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from limo.errors import LimoError
from limo.paths import REPO_ROOT, data_dir
from limo.plan import build_plan, plan_command
from limo.plan_budget import load_throughput, model_size_b, size_class
from limo.recipes import load_recipe


def limo(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """The real command line, in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "limo.cli", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT
    )


def by_role(plan: dict, stage: str, role: str) -> list[dict]:
    return [e for e in plan["generations"] if e["stage"] == stage and e["role"] == role]


def test_curate_plan_v3_names_the_published_models_samples_band_and_profile(tmp_path):
    res = limo("curate", "recipes/limo-v3.yaml", "--plan", "--out", str(tmp_path / "plan"))
    assert res.returncode == 0, res.stderr
    assert "(nothing was generated)" in " ".join((res.stdout + res.stderr).split())
    assert sorted(p.name for p in (tmp_path / "plan").iterdir()) == ["plan.json"]  # no stage ran
    plan = json.loads((tmp_path / "plan" / "plan.json").read_text())
    assert plan["plan_version"] == 1 and plan["command"] == "curate" and plan["recipe"]["name"] == "limo-v3"
    (weak,) = by_role(plan, "difficulty", "weak")
    assert weak["model"] == "Qwen/Qwen2.5-Math-7B-Instruct" and weak["samples_per_problem"] == 4
    assert weak["threshold"] == {"drop_if_solved_at_least": 1, "of": 4}
    (strong,) = by_role(plan, "difficulty", "strong")
    assert strong["model"] == "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B" and strong["samples_per_problem"] == 32
    assert strong["band"] == {"min_solved": 1, "max_solved": 3, "of": 32}
    stages = {s["stage"]: s for s in plan["stages"]}
    assert stages["score"]["profile"] == "limo"
    assert stages["score"]["weights"] == {
        "elaborated_reasoning": 0.3,
        "self_verification": 0.2,
        "exploratory_approach": 0.25,
        "adaptive_granularity": 0.25,
    }
    assert stages["select"]["target_size"] == 800
    assert [m["model"] for m in stages["solutions"]["models"]] == [
        "deepseek-r1",
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
        "Qwen/QwQ-32B",
    ]
    assert plan["train"] is None and plan["eval"] is None  # curate plans curation only
    # the hub sources have no size offline: the bounds say "unknown" instead of guessing
    sources = {s["name"]: s for s in stages["pool"]["sources"]}
    assert sources["numina"]["rows"] is None and sources["math_train"]["rows"] == 7500
    assert weak["max_generations"] is None and plan["budget"]["total"]["max_generations"] is None


def test_curate_plan_v1_has_its_own_values(tmp_path):
    plan = plan_command("curate", REPO_ROOT / "recipes/limo-v1.yaml", tmp_path)
    (weak,) = by_role(plan, "difficulty", "weak")
    (strong,) = by_role(plan, "difficulty", "strong")
    assert weak["model"] == "Qwen/Qwen2.5-Math-7B-Instruct" and weak["samples_per_problem"] == 4
    assert strong["model"] == "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B" and strong["band"]["of"] == 32
    assert (strong["band"]["min_solved"], strong["band"]["max_solved"]) == (1, 3)
    stages = {s["stage"]: s for s in plan["stages"]}
    assert stages["select"]["target_size"] == 817 and stages["score"]["profile"] == "limo"
    assert stages["score"]["judge"]["model"] == "Qwen/Qwen2.5-32B-Instruct"  # v1's "LLM-assisted" stand-in


def test_run_plan_resolves_train_and_eval_per_version(tmp_path):
    v1 = build_plan(load_recipe(REPO_ROOT / "recipes/limo-v1.yaml"), "run")
    v3 = build_plan(load_recipe(REPO_ROOT / "recipes/limo-v3.yaml"), "run")
    assert v1["train"]["settings"]["global_batch_size"] == 32 and v3["train"]["settings"]["global_batch_size"] == 64
    for plan in (v1, v3):
        s = plan["train"]["settings"]
        assert (s["learning_rate"], s["epochs"], s["cutoff"], s["loss_weighting"]) == (5e-6, 15, 16384, "sample")
    aime = {p["eval"]["protocol"]: next(b for b in p["eval"]["benchmarks"] if b["name"] == "aime24") for p in (v1, v3)}
    assert (aime["limo-v1"]["samples_per_problem"], aime["limo-v1"]["temperature"]) == (16, 0.7)
    assert (aime["limo-v3"]["samples_per_problem"], aime["limo-v3"]["temperature"]) == (4, 0.6)
    # base and fine-tuned model are both evaluated: 30 AIME problems x 4 samples each
    assert [e["max_generations"] for e in v3["generations"] if e["role"] == "aime24"] == [120, 120]


def _local_recipe(tmp_path: Path, rows: int = 10) -> Path:
    pool = tmp_path / "pool.jsonl"
    pool.write_text(
        "".join(json.dumps({"id": f"p{i}", "problem": f"q {i}", "answer": str(i)}) + "\n" for i in range(rows))
    )
    model = {"engine": {"model": "org/Tiny-2B"}, "sampling": {"temperature": 0.7, "max_tokens": 100}}
    recipe = {
        "name": "bounds",
        "pool": {"sources": [{"name": "local", "path": str(pool)}, {"name": "hub", "hf_id": "org/ds", "limit": 5}]},
        "difficulty": {"weak": {**model, "n": 3}, "strong": [{**model, "n": 4, "band": [1, 2]}], "max_problems": 12},
        "diversity": {"target_size": 6},
        "solutions": {"models": [{**model, "n": 2}], "columns": ["solution"]},
        "score": {"judge": {**model, "sampling": {"temperature": 0.0, "max_tokens": 10}}},
        "select": {"target_size": 4},
        "train": {"epochs": 3, "global_batch_size": 2, "cutoff": 50},
        "eval": {"benchmarks": ["aime24"], "limit": 7, "protocol": "limo-v3", "max_tokens": 20},
    }
    path = tmp_path / "bounds.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_bounds_follow_the_stages_by_hand(tmp_path):
    """10 local rows + a hub source with limit 5 = 15 rows; difficulty caps at 12 problems: weak 12 x 3 = 36,
    strong 12 x 4 = 48; diversity keeps 6; candidates 6 x (2 + 1 column) = 18, judged once each; eval 7 AIME
    problems x 4 samples (limo-v3) for the base and the tuned model; select keeps 4 -> 4 x 3 epochs / 2 = 6 steps."""
    plan = build_plan(load_recipe(_local_recipe(tmp_path)), "run")
    stages = {s["stage"]: s for s in plan["stages"]}
    assert [s["rows"] for s in stages["pool"]["sources"]] == [10, 5]
    assert stages["pool"]["rows_max"] == 15 and stages["difficulty"]["rows_max"] == 12
    assert by_role(plan, "difficulty", "weak")[0]["max_generations"] == 36
    assert by_role(plan, "difficulty", "strong")[0]["max_generations"] == 48
    assert by_role(plan, "solutions", "candidates")[0]["max_generations"] == 12
    judge = by_role(plan, "score", "judge")[0]
    assert (judge["max_generations"], judge["max_output_tokens"]) == (18, 180)
    assert [e["max_generations"] for e in plan["generations"] if e["stage"] == "eval"] == [28, 28]
    assert plan["train"]["examples_max"] == 4 and plan["train"]["optimizer_steps_max"] == 6
    total = 36 + 48 + 12 + 18 + 28 + 28
    assert plan["budget"]["total"]["max_generations"] == total
    tokens = (36 + 48 + 12) * 100 + 18 * 10 + 56 * 20
    assert plan["budget"]["total"]["max_output_tokens"] == tokens
    (tiny,) = [m for m in plan["budget"]["per_model"] if m["model"] == "org/Tiny-2B"]
    assert tiny["size_class"] == "<=2B" and tiny["tokens_per_s_per_gpu"] == [4000.0, 16000.0]
    assert tiny["gpu_hours"] == [
        round(tiny["max_output_tokens"] / 16000 / 3600, 2),
        round(tiny["max_output_tokens"] / 4000 / 3600, 2),
    ]


def test_pool_rows_and_throughput_overrides(tmp_path):
    recipe = load_recipe(REPO_ROOT / "recipes/limo-v3.yaml")
    throughput_file = tmp_path / "tp.yaml"
    throughput_file.write_text('"<=8B": [1000, 2000]\n')
    plan = build_plan(recipe, "curate", load_throughput(throughput_file), assume_pool_rows=1000)
    rows = 1000 + 1000 + 919 + 7500  # two hub sources assumed, the two local pools counted
    (weak,) = by_role(plan, "difficulty", "weak")
    assert weak["max_generations"] == rows * 4 and weak["max_output_tokens"] == rows * 4 * 3072
    (qwen_math,) = [m for m in plan["budget"]["per_model"] if m["model"] == weak["model"]]
    assert qwen_math["tokens_per_s_per_gpu"] == [1000.0, 2000.0]
    assert qwen_math["gpu_hours"] == [round(rows * 4 * 3072 / 2000 / 3600, 2), round(rows * 4 * 3072 / 1000 / 3600, 2)]
    assert plan["assumptions"]["pool_rows_assumed"] == 1000


@pytest.mark.parametrize(
    "text,message",
    [('"<=9B": [1, 2]', "unknown size class"), ('"<=8B": [3, 2]', "0 < low <= high"), ("[1, 2]", "a mapping")],
)
def test_bad_throughput_file_is_one_line(tmp_path, text, message):
    path = tmp_path / "tp.yaml"
    path.write_text(text)
    with pytest.raises(LimoError, match=message):
        load_throughput(path)


def test_cli_plan_errors_are_one_line(tmp_path):
    res = limo("run", "recipes/limo-v3.yaml", "--plan", "--out", str(tmp_path), "--pool-rows", "0")
    out = (res.stdout + res.stderr).strip()
    assert res.returncode == 2 and "--pool-rows" in out and "must be >= 1" in out
    assert len(out.splitlines()) == 1 and "Traceback" not in out
    res = limo("curate", "recipes/limo-v3.yaml", "--plan", "--out", str(tmp_path), "--throughput", "missing.yaml")
    out = (res.stdout + res.stderr).strip()
    assert res.returncode == 2 and "--throughput missing.yaml: file not found" in out and len(out.splitlines()) == 1


def test_model_sizes_from_names():
    assert model_size_b("Qwen/Qwen2.5-Math-7B-Instruct") == 7
    assert model_size_b("deepseek-ai/DeepSeek-R1-Distill-Qwen-32B") == 32
    assert model_size_b("Qwen/Qwen2.5-32B-Instruct (fine-tuned)") == 32
    assert model_size_b("smollm2-135m") == pytest.approx(0.135)
    assert model_size_b("deepseek-r1") == 671
    assert model_size_b("runs/x/train") is None and size_class(None) is None
    assert [size_class(s) for s in (0.135, 7, 14, 32, 72, 671)] == ["<=2B", "<=8B", "<=16B", "<=40B", "<=80B", ">80B"]


def test_experiment_plan_counts_every_variant_and_model(tmp_path):
    grid = {
        "recipe": str(_local_recipe(tmp_path)),
        "variants": [{"name": "a", "sample_count": 2}, {"name": "b", "sample_count": 3}],
        "models": ["org/Tiny-2B", "org/Other-7B"],
        "include_base": True,
    }
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    plan = plan_command("experiment", path, tmp_path / "plan")
    assert plan["experiment"]["variants"] == ["a", "b"] and plan["train"]["runs"] == 4
    evaluated = {e["model"] for e in plan["generations"] if e["stage"] == "eval"}
    assert len(evaluated) == 2 + 4  # two base models + 2 variants x 2 models fine-tuned
    assert json.loads((tmp_path / "plan" / "plan.json").read_text())["command"] == "experiment"


# -- the embedded model standing in for every model of limo-v3: generations made <= the plan's bound -------------


def standin_recipe(tmp_path: Path) -> Path:
    """limo-v3.yaml with every model replaced by the embedded SmolLM2-135M and every size cut for a CPU: 6 MATH +
    2 AIME problems from ../shared/data, 2 samples per filter, short outputs. SmolLM2 solves nothing, so the strong
    band is [0, 1] of 2 (the paper's [1, 3] of 32 would drop every problem) and the pool's reference solutions are
    candidates too (its own rarely verify); one training epoch; eval on 2 problems of AIME24 and MATH500."""
    data = yaml.safe_load((REPO_ROOT / "recipes/limo-v3.yaml").read_text())
    cpu = {"model": "smollm2-135m", "engine": "hf", "batch_size": 8}
    data["name"] = "limo-v3-cpu-standin"
    data["pool"]["sources"] = [
        {"name": "math_train", "path": "data:pools/math_train.jsonl", "limit": 6},
        {"name": "aime_1983_2023", "path": "data:pools/aime_1983_2023.jsonl", "limit": 2},
    ]
    data["dedup"]["keep_priority"] = ["math_train", "aime_1983_2023"]
    diff = data["difficulty"]
    diff["weak"].update(engine=cpu, n=2, sampling={**diff["weak"]["sampling"], "max_tokens": 24})
    diff["strong"] = [
        {"engine": cpu, "sampling": {"temperature": 0.6, "top_p": 0.95, "max_tokens": 24}, "n": 2, "band": [0, 1]}
    ]
    diff["round_size"] = 1
    for i, m in enumerate(data["solutions"]["models"]):
        m.update(engine={**cpu, "cache_id": f"standin-{i}"}, n=1, sampling={**m["sampling"], "max_tokens": 32})
    data["solutions"]["columns"] = ["solution"]
    data["train"] = {
        "model": "smollm2-135m",
        "chat_template": "chatml",
        "cutoff": 384,
        "epochs": 1,
        "learning_rate": 1.0e-4,
        "global_batch_size": 2,
        "per_device_batch_size": 1,
        "gradient_checkpointing": False,
        "precision": "auto",
        "save_strategy": "no",
        "loss_weighting": "sample",
    }
    data["eval"].update(
        engine={"engine": "hf", "batch_size": 8}, benchmarks=["aime24", "math500"], limit=2, max_tokens=24
    )
    path = tmp_path / "limo-v3-cpu.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.slow
@pytest.mark.timeout(1800)  # generous for a loaded 2-core box; typically a few minutes
def test_standin_run_makes_at_most_the_planned_generations(tmp_path):
    assert (data_dir() / "pools" / "math_train.jsonl").exists()
    recipe = standin_recipe(tmp_path)
    res = limo("run", str(recipe), "--plan", "--out", str(tmp_path / "plan"))
    assert res.returncode == 0, res.stdout + res.stderr
    plan = json.loads((tmp_path / "plan" / "plan.json").read_text())
    bound = plan["budget"]["total"]["max_generations"]
    assert bound is not None and bound > 0
    cache = tmp_path / "gen.sqlite"
    res = limo("run", str(recipe), "--out", str(tmp_path / "run"), "--cache", str(cache), timeout=1700)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    with sqlite3.connect(cache) as db:
        made = db.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
        tokens = db.execute("SELECT completion FROM generations").fetchall()
    made_tokens = sum(json.loads(c)["completion_tokens"] for (c,) in tokens)
    summary = {s["stage"]: s for s in json.loads((tmp_path / "run" / "summary.json").read_text())}
    planned = {(e["stage"], e["role"]): e for e in plan["generations"]}
    weak = summary["difficulty"]["engines"]["tier 1: smollm2-135m"]["generated"]
    strong = summary["difficulty"]["engines"]["tier 2: smollm2-135m"]["generated"]
    candidates = sum(s["generated"] for s in summary["solutions"]["engines"].values())
    run_summary = json.loads((tmp_path / "run" / "run_summary.json").read_text())
    stage_seconds = {name: round(s.get("seconds", 0), 1) for name, s in summary.items()}
    print(
        f"stage seconds {stage_seconds}; steps {run_summary.get('timings_s')}; wall {run_summary.get('wall_seconds')}"
    )
    print(
        f"generations made {made} <= planned bound {bound}; output tokens {made_tokens} <= "
        f"{plan['budget']['total']['max_output_tokens']}; weak {weak}, strong {strong}, candidates {candidates}"
    )
    assert 0 < made <= bound
    assert made_tokens <= plan["budget"]["total"]["max_output_tokens"]
    assert weak <= planned[("difficulty", "weak")]["max_generations"]
    assert strong <= planned[("difficulty", "strong")]["max_generations"]
    assert candidates <= sum(e["max_generations"] for e in plan["generations"] if e["stage"] == "solutions")
    assert (tmp_path / "run" / "report.md").exists()
