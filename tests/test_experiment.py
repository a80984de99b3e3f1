"""`limo experiment` on a tiny CPU grid: 2 variants trained and evaluated end to end; the table matches each
variant's results.json. Also unit tests of how variants are cut from the curated tables."""

import json

import pytest
import yaml

from limo.errors import LimoError
from limo.experiment import Variant, experiment_markdown, load_grid, variant_rows


def _cand(pid: str, k: int, quality: int, score: float, **extra) -> dict:
    return {"id": pid, "candidate_id": f"{pid}#m#{k}", "quality_level": quality, "quality_score": score, **extra}


def test_quality_variant_picks_best_candidate_at_that_level_and_counts_misses():
    scored = [_cand("a", 0, 5, 0.9), _cand("a", 1, 5, 0.95), _cand("a", 2, 2, 0.3), _cand("b", 0, 2, 0.4)]
    rows, counts = variant_rows(Variant(name="L5", quality_level=5), scored, selected=[])
    assert [r["candidate_id"] for r in rows] == ["a#m#1"]
    assert counts == {"no_candidate_at_level": 1}
    rows, counts = variant_rows(Variant(name="L2", quality_level=2), scored, selected=[])
    assert [r["candidate_id"] for r in rows] == ["a#m#2", "b#m#0"]
    assert counts == {}


def test_filters_and_seeded_sample_count():
    selected = [_cand(f"p{i}", 0, 5, 0.5, level=1 + i % 5, source="s") for i in range(20)]
    rows, counts = variant_rows(Variant(name="hard", levels=[4, 5]), [], selected)
    assert {r["level"] for r in rows} == {4, 5} and counts == {"not_in_levels": 12}
    a, counts = variant_rows(Variant(name="n5", sample_count=5, seed=3), [], selected)
    b, _ = variant_rows(Variant(name="n5", sample_count=5, seed=3), [], selected)
    assert [r["id"] for r in a] == [r["id"] for r in b] and len(a) == 5 and counts == {"not_sampled": 15}
    _, counts = variant_rows(Variant(name="n50", sample_count=50), [], selected)
    assert counts == {"short_of_sample_count": 30}


def test_bad_grid_is_a_clear_error(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"recipe": "missing.yaml", "variants": [{"name": "x", "quality_level": 9}]}))
    with pytest.raises(LimoError, match="quality_level must be in 1..5"):
        load_grid(grid)
    grid.write_text(yaml.safe_dump({"recipe": "missing.yaml", "variants": [{"name": "x"}]}))
    with pytest.raises(LimoError, match="recipe not found"):
        load_grid(grid)


@pytest.mark.slow
@pytest.mark.timeout(2400)  # trains twice on CPU; generous for a loaded 2-core machine
def test_tiny_experiment_two_variants_end_to_end(tmp_path, tiny_recipe):
    from limo.experiment import run_experiment

    recipe = tiny_recipe(tmp_path)
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        yaml.safe_dump(
            {
                "name": "tiny",
                "recipe": recipe.name,
                "variants": [{"name": "n3", "sample_count": 3}, {"name": "all"}],
            }
        )
    )
    out = tmp_path / "exp"
    result = run_experiment(grid, out, cache=tmp_path / "gen.sqlite")
    assert [e["variant"] for e in result["entries"]] == ["n3", "all"]
    saved = json.loads((out / "experiment.json").read_text())
    table = (out / "experiment.md").read_text()
    for entry in saved["entries"]:
        variant_dir = out / "variants" / entry["variant"]
        lines = (variant_dir / "data.jsonl").read_text().splitlines()
        assert entry["data"]["examples"] == len(lines)
        results = json.loads((variant_dir / "smollm2-135m" / "eval" / "results.json").read_text())
        for bench, score in entry["scores"].items():
            assert score == results["benchmarks"][bench]["score"]
            cell = f"{100 * score['value']:.1f} [{100 * score['ci'][0]:.1f}, {100 * score['ci'][1]:.1f}]"
            assert f"| {entry['variant']} | smollm2-135m | {len(lines)} | {cell} |" in table
        assert (variant_dir / "smollm2-135m" / "train" / "config.json").exists()
    assert saved["entries"][0]["data"]["examples"] == 3
    assert (out / "accuracy_vs_samples.png").stat().st_size > 0
    assert experiment_markdown(saved) == table
