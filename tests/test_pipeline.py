"""`limo run` end to end on a tiny recipe: curate -> train -> eval (base and tuned) -> report; a rerun resumes."""

import json

import pytest

from limo.errors import LimoError


def test_run_needs_train_and_eval_sections(tmp_path):
    from limo.pipeline import run_pipeline
    from limo.recipes import load_recipe

    recipe = tmp_path / "r.yaml"
    recipe.write_text("pool: {sources: [{name: d, path: x.jsonl}]}\n")
    with pytest.raises(LimoError, match=r"r.yaml: `limo run` needs a 'train:' section"):
        run_pipeline(load_recipe(recipe), tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before anything is written


@pytest.mark.slow
@pytest.mark.timeout(2400)  # trains twice on CPU; generous for a loaded 2-core machine
def test_tiny_run_end_to_end_and_resume(tmp_path, tiny_recipe):
    from limo.engines.cache import GenerationCache
    from limo.pipeline import run_pipeline
    from limo.recipes import load_recipe

    recipe = load_recipe(tiny_recipe(tmp_path))
    run = tmp_path / "run"
    cache = tmp_path / "gen.sqlite"
    summary = run_pipeline(recipe, run, cache=cache)
    report = (run / "report.md").read_text()
    assert "## Before / after" in report and "## Curation funnel" in report
    tuned = json.loads((run / "eval" / "tuned" / "results.json").read_text())
    base = json.loads((run / "eval" / "base" / "results.json").read_text())
    bench = next(iter(tuned["benchmarks"]))
    assert summary["tuned"][bench] == tuned["benchmarks"][bench]["score"]
    assert summary["base"][bench]["value"] == base["benchmarks"][bench]["score"]["value"]
    assert summary["exported_examples"] == len((run / "export" / "messages.jsonl").read_text().splitlines())
    assert (run / "report" / "compare.png").exists()
    cached = GenerationCache(cache).count()
    model_mtime = (run / "train" / "model.safetensors").stat().st_mtime_ns
    again = run_pipeline(recipe, run, cache=cache)
    assert GenerationCache(cache).count() == cached  # nothing generated twice
    assert (run / "train" / "model.safetensors").stat().st_mtime_ns == model_mtime  # training skipped
    assert again["tuned"] == summary["tuned"]
