"""`limo experiment`: how variants are cut (quality levels over the same problems, ranked / random subsets, filters),
the size check that stops a run before training, the difficulty ablation on the real pools, and a tiny CPU grid
trained and evaluated end to end (the table matches each variant's results.json)."""

import json

import pytest
import yaml

from limo.errors import LimoError
from limo.experiment import experiment_markdown, load_grid
from limo.paths import REPO_ROOT
from limo.runs import Run
from limo.variants import Variant, check_sizes, level_candidate, variant_rows


def _cand(pid: str, k: int, score: float, **extra) -> dict:
    return {"id": pid, "candidate_id": f"{pid}#m#{k}", "quality_score": score, **extra}


def test_quality_levels_cover_the_same_problems_with_that_levels_solution():
    """LIMO v3 §6.3.1: the same problems at every level; level k = each problem's k-th fifth by quality score."""
    scored = [_cand(p, k, s) for p in ("a", "b", "c") for k, s in enumerate([0.1, 0.5, 0.3, 0.9, 0.7])]
    scored += [_cand("d", k, 0.5) for k in range(3)]  # too few solutions for five levels
    chosen = {}
    for level in range(1, 6):
        rows, counts = variant_rows(Variant(name=f"L{level}", quality_level=level), scored, selected=[])
        assert [r["id"] for r in rows] == ["a", "b", "c"]
        assert counts == {"fewer_solutions_than_min": 1}
        chosen[level] = {r["quality_score"] for r in rows}
    assert chosen == {1: {0.1}, 2: {0.3}, 3: {0.5}, 4: {0.7}, 5: {0.9}}
    nine = [_cand("x", k, k / 10) for k in range(9)]  # 9 solutions: positions 0, 2, 4, 6, 8
    assert [level_candidate(nine, lv)["quality_score"] for lv in range(1, 6)] == [0.0, 0.2, 0.4, 0.6, 0.8]
    rows, _ = variant_rows(Variant(name="L5", quality_level=5, min_solutions=3), scored, [])
    assert [r["id"] for r in rows] == ["a", "b", "c", "d"]


def test_quality_variants_sample_the_same_problems_at_every_level():
    scored = [_cand(f"p{i:02d}", k, (7 * i + 3 * k) % 10 / 10) for i in range(20) for k in range(5)]
    picks = [
        {
            r["id"]
            for r in variant_rows(Variant(name="L", quality_level=lv, sample_count=6, subset="random"), scored, [])[0]
        }
        for lv in range(1, 6)
    ]
    assert len(picks[0]) == 6 and all(p == picks[0] for p in picks)


def test_filters_ranked_and_random_subsets():
    selected = [_cand(f"p{i:02d}", 0, 1 - i / 20, level=1 + i % 5, source="s") for i in range(20)]  # rank order
    rows, counts = variant_rows(Variant(name="hard", levels=[4, 5]), [], selected)
    assert {r["level"] for r in rows} == {4, 5} and counts == {"not_in_levels": 12}
    ranked, counts = variant_rows(Variant(name="n5", sample_count=5), [], selected)
    assert [r["id"] for r in ranked] == [f"p{i:02d}" for i in range(5)] and counts == {"not_sampled": 15}
    a, _ = variant_rows(Variant(name="r5", sample_count=5, subset="random", seed=3), [], selected)
    b, _ = variant_rows(Variant(name="r5", sample_count=5, subset="random", seed=3), [], selected)
    assert [r["id"] for r in a] == [r["id"] for r in b] and len(a) == 5 and a != ranked


def test_size_check_names_variant_size_and_shortfall():
    ok, short = Variant(name="fine", sample_count=3), Variant(name="advanced-500", sample_count=500)
    check_sizes([(ok, 3, {})], "now")
    with pytest.raises(LimoError, match=r"advanced-500: size 500, has 212, short by 288 \(not_in_sources: 9\)"):
        check_sizes([(ok, 3, {}), (short, 212, {"not_in_sources": 9})], "now")


def _grid(tmp_path, recipe, variants, **extra) -> object:
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"name": "g", "recipe": str(recipe), "variants": variants, **extra}))
    return grid


def test_variant_short_of_its_size_fails_before_any_training(tmp_path, tiny_recipe):
    """After curation (no model: reference solutions, no difficulty filter) the select stage keeps 8 problems; a
    variant of 9 stops the run before training, naming variant, size and shortfall."""
    from limo.experiment import run_experiment

    recipe = tiny_recipe(tmp_path)
    variants = [{"name": "n8", "sample_count": 8}, {"name": "n9", "sample_count": 9}]
    grid = _grid(tmp_path, recipe, variants, set=["difficulty.enabled=false"])
    out = tmp_path / "exp"
    with pytest.raises(LimoError, match=r"n9: size 9, has 8, short by 1") as err:
        run_experiment(grid, out, cache=tmp_path / "gen.sqlite")
    assert "n8" not in str(err.value).split("nothing was trained:")[1]
    assert (out / "curate" / "09_select" / "done").exists()
    assert not list(out.rglob("train"))  # nothing trained


def test_drawing_problems_checks_sizes_before_any_solution(tmp_path, tiny_recipe):
    """draw_from: problems refuses a tier the curated problems cannot fill before generating anything."""
    from limo.experiment import run_experiment

    recipe = tiny_recipe(tmp_path)
    grid = _grid(
        tmp_path,
        recipe,
        [{"name": "all-10", "sample_count": 10}, {"name": "tier-50", "sample_count": 50, "subset": "random"}],
        draw_from="problems",
        set=["difficulty.enabled=false", "diversity.enabled=false"],
    )
    with pytest.raises(LimoError, match=r"when drawing problems.*: tier-50: size 50, has 10, short by 40$") as err:
        run_experiment(grid, tmp_path / "exp", cache=tmp_path / "gen.sqlite")  # 12 problems, 2 contaminated
    assert "all-10" not in str(err.value)
    assert not (tmp_path / "exp" / "variants").exists()  # no solution generated, nothing trained


def test_bad_grid_is_a_clear_error(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"recipe": "missing.yaml", "variants": [{"name": "x", "quality_level": 9}]}))
    with pytest.raises(LimoError, match="quality_level must be in 1..5"):
        load_grid(grid)
    grid.write_text(yaml.safe_dump({"recipe": "missing.yaml", "variants": [{"name": "x"}]}))
    with pytest.raises(LimoError, match="recipe not found"):
        load_grid(grid)
    grid.write_text(yaml.safe_dump({"recipe": "r.yaml", "variants": [{"name": "x", "subset": "best"}]}))
    with pytest.raises(LimoError, match="subset"):
        load_grid(grid)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_difficulty_ablation_tiers_on_the_real_pools(tmp_path, shared_data):
    """Acceptance (issue 12): recipes/ablations/difficulty-v3.yaml on the real pools with the embedded model
    standing in for DeepSeek-R1 (tiers of 20, one short sample each, unverified: a 135M model solves almost no
    AIME problem) gives Simple / Complex / Advanced at their size, from the sources and MATH levels named."""
    from limo.experiment import run_experiment

    spec = yaml.safe_load((REPO_ROOT / "recipes/ablations/difficulty-v3.yaml").read_text())
    spec["recipe"] = str((REPO_ROOT / "recipes/ablations" / spec["recipe"]).resolve())
    spec["verify_solutions"] = False
    spec["set"] += [
        "solutions.models=[{engine: {model: smollm2-135m, engine: hf, batch_size: 20}, "
        "sampling: {temperature: 0.0, max_tokens: 8, seed: 0}, n: 1}]",
    ]
    for variant in spec["variants"]:
        variant["sample_count"] = 20
    grid = tmp_path / "difficulty-cpu.yaml"
    grid.write_text(yaml.safe_dump(spec))
    out = tmp_path / "exp"
    result = run_experiment(grid, out, cache=tmp_path / "gen.sqlite", data_only=True)
    assert {name: v["examples"] for name, v in result["variants"].items()} == {
        "simple-500": 20,
        "complex-500": 20,
        "advanced-500": 20,
    }
    tiers = {}
    for name in result["variants"]:
        rows = Run(out / "variants" / name / "curate").load(3, "select").to_list()
        lines = (out / "variants" / name / "data.jsonl").read_text().splitlines()
        assert len(rows) == len(lines) == 20
        tiers[name] = rows
    assert all(r["source"] == "math_train" and r["level"] in (1, 2) for r in tiers["simple-500"])
    assert all(r["source"] == "math_train" and r["level"] in (3, 4, 5) for r in tiers["complex-500"])
    assert all(r["source"] == "aime_1983_2023" for r in tiers["advanced-500"])
    ids = [r["id"] for rows in tiers.values() for r in rows]
    assert len(set(ids)) == 60
    # dedup kept the AIME copy of problems that MATH train also holds (keep_priority: aime first)
    dropped = Run(out / "curate").load(2, "dedup", "dropped").to_list()
    math_dups = [r for r in dropped if r["source"] == "math_train" and r["duplicate_of"].startswith("aime")]
    assert len(math_dups) > 100  # shared/data/README.md: 196 AIME problems are also in MATH train
    assert not [r for r in dropped if r["source"] == "aime_1983_2023" and r["duplicate_of"].startswith("train/")]


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
