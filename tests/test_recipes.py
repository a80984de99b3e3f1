"""Recipe loading: dataclass building with clear errors, --set overrides, config hashes, the typed Recipe, and
every file under recipes/ loads."""

import json
from dataclasses import dataclass, field
from typing import Literal

import pytest
import yaml

from limo.config import apply_overrides, build, config_hash, load_yaml, replace_fields
from limo.errors import LimoError
from limo.paths import REPO_ROOT
from limo.recipes import load_recipe

RECIPES = REPO_ROOT / "recipes"


@dataclass
class Inner:
    k: int = 1
    mode: Literal["a", "b"] = "a"


@dataclass
class Outer:
    name: str = "x"
    lr: float = 5e-6
    inner: Inner = field(default_factory=Inner)
    items: list[Inner] = field(default_factory=list)
    note: str | None = None
    maybe: Inner | None = None

    def __post_init__(self):
        if self.lr <= 0:
            raise ValueError("lr must be > 0")


def test_build_nested_and_lists():
    cfg = build(Outer, {"lr": 1, "inner": {"k": 3}, "items": [{"mode": "b"}], "note": None})
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.inner == Inner(k=3) and cfg.items == [Inner(mode="b")]


@pytest.mark.parametrize(
    "data, message",
    [
        ({"bogus": 1}, r"config: unknown key\(s\) \['bogus'\]"),
        ({"inner": {"k": "three"}}, r"config.inner.k: expected int"),
        ({"inner": {"mode": "c"}}, r"config.inner.mode: 'c' is not one of \['a', 'b'\]"),
        ({"items": [{"k": 1}, {"nope": 2}]}, r"config.items\[1\]: unknown key"),
        ({"lr": -1}, r"config: lr must be > 0"),
        ({"lr": "fast"}, r"config.lr: expected a number"),
        ({"maybe": {"k": "three"}}, r"^config.maybe.k: expected int, got 'three'$"),  # the inner reason, not the Union
        ({"maybe": {"nope": 1}}, r"^config.maybe: unknown key\(s\) \['nope'\]"),
        ({"note": 3}, r"^config.note: expected str, got 3$"),
        ({"inner": 5}, r"^config.inner: expected a mapping of Inner settings, got 5$"),
        ({"items": {"k": 1}}, r"^config.items: expected a list, got \{'k': 1\}$"),
    ],
)
def test_build_errors_name_the_key(data, message):
    with pytest.raises(LimoError, match=message):
        build(Outer, data)


def test_overrides_parse_yaml_values():
    data = apply_overrides({"train": {"epochs": 15}}, ["train.epochs=2", "train.lr=1e-4", "eval.benchmarks=[a, b]"])
    assert data == {"train": {"epochs": 2, "lr": "1e-4"}, "eval": {"benchmarks": ["a", "b"]}}
    assert build(Outer, {"lr": data["train"]["lr"]}).lr == 1e-4
    with pytest.raises(LimoError, match="key=value"):
        apply_overrides({}, ["novalue"])


def test_override_with_broken_yaml_is_one_line():
    with pytest.raises(LimoError) as e:
        apply_overrides({}, ["x=[1,"])
    assert str(e.value).startswith("--set x=[1,: the value is not valid YAML") and "\n" not in str(e.value)


def test_config_hash_is_stable_and_sensitive():
    assert config_hash(Outer()) == config_hash(Outer())
    assert config_hash(Outer()) != config_hash(Outer(lr=1e-5))


def test_load_yaml_errors(tmp_path):
    with pytest.raises(LimoError, match="recipe not found"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\nb: [1, 2\n")
    with pytest.raises(LimoError, match=r"bad.yaml, line \d+: invalid YAML") as e:
        load_yaml(bad)
    assert "\n" not in str(e.value)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"a: \xff\xfe\n")
    with pytest.raises(LimoError, match=r"bin.yaml, line 1: recipe is not UTF-8"):
        load_yaml(binary)
    with pytest.raises(LimoError, match="is a directory"):
        load_yaml(tmp_path)
    top = tmp_path / "list.yaml"
    top.write_text("- 1\n")
    with pytest.raises(LimoError, match="mapping at the top level"):
        load_yaml(top)


def _write(tmp_path, data: dict):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


POOL = {"sources": [{"name": "d", "path": "x.jsonl"}]}


def test_recipe_sections_are_typed_and_optional(tmp_path):
    from limo.curate import CurateRecipe
    from limo.eval.run import EvalConfig
    from limo.train.sft import TrainConfig

    full = load_recipe(_write(tmp_path, {"name": "n", "seed": 3, "pool": POOL, "train": {"epochs": 2}, "eval": {}}))
    assert (full.name, full.seed) == ("n", 3)
    assert isinstance(full.curate, CurateRecipe) and full.curate.seed == 3
    assert isinstance(full.train, TrainConfig) and full.train.epochs == 2.0
    assert isinstance(full.eval, EvalConfig)
    overrides = ["epochs=4", "seed=7", "train.cutoff=512"]
    train_only = load_recipe(_write(tmp_path, {"train": {"epochs": 2}}), overrides, default_section="train")
    assert train_only.curate is None and train_only.eval is None and train_only.train.epochs == 4.0
    assert (train_only.train.seed, train_only.train.cutoff, train_only.seed) == (7, 512, 0)
    assert train_only.name == "r"  # the file's stem when the recipe has no name
    with pytest.raises(LimoError, match=r"r.yaml: `limo curate` needs a 'pool:' section"):
        train_only.need("curate", command="curate")


@pytest.mark.parametrize(
    "data, overrides, message",
    [
        ({"pool": POOL, "trian": {}}, [], r"r.yaml: unknown top-level key\(s\) \['trian'\]"),
        ({"dedup": {}}, [], r"curation keys \['dedup'\] without a 'pool:' section"),
        ({"train": "fast"}, [], r"r.yaml: 'train:' must be a mapping"),
        ({"train": {"cutoff": 0}}, [], r"r.yaml: train: cutoff must be >= 1"),
        ({"train": {"peft": {"r": "x"}}}, [], r"r.yaml: train.peft.r: expected int, got 'x'"),
        ({"eval": {"n": 0}}, [], r"r.yaml: eval: n must be >= 1"),
        ({"eval": {"grade_workers": 0}}, [], r"r.yaml: eval: grade_workers must be >= 1, got 0"),
        ({"eval": {"grade_timeout_s": 0}}, [], r"r.yaml: eval: grade_timeout_s must be > 0"),
        ({"pool": POOL, "verify": {"workers": 0}}, [], r"r.yaml: recipe.verify: workers must be >= 1, got 0"),
        ({"pool": POOL, "dedup": {"threshold": "high"}}, [], r"r.yaml: recipe.dedup.threshold: expected a number"),
        ({"seed": "one", "pool": POOL}, [], r"r.yaml: seed: expected an integer"),
        ({"pool": 5}, [], r"r.yaml: recipe.pool: expected a mapping of Config settings, got 5"),
        ({"pool": {"sources": 5}}, [], r"r.yaml: recipe.pool.sources: expected a list, got 5"),
        ({"train": {"peft": 5}}, [], r"r.yaml: train.peft: expected a mapping of PeftSpec settings"),
        ({"eval": {"engine": 5}}, [], r"r.yaml: eval.engine: expected an engine name or a mapping"),
        ({"pool": POOL}, ["x=[1,"], r"--set x=\[1,: the value is not valid YAML"),
    ],
)
def test_recipe_errors_are_one_line_and_name_the_field(tmp_path, data, overrides, message):
    with pytest.raises(LimoError, match=message) as e:
        load_recipe(_write(tmp_path, data), overrides)
    assert "\n" not in str(e.value)


def test_replace_fields_validates(tmp_path):
    from limo.train.sft import TrainConfig

    cfg = replace_fields(TrainConfig(), {"model": "m", "chat_template": "qwen"})
    assert (cfg.model, cfg.chat_template) == ("m", "qwen")
    with pytest.raises(LimoError, match="unknown chat_template"):
        replace_fields(TrainConfig(), {"chat_template": "alpaca"})


def _recipe_files(folder: str = "") -> list:
    return sorted(p for p in (RECIPES / folder).rglob("*") if p.is_file())


def test_every_file_under_recipes_is_covered():
    """Each file under recipes/ is one of the kinds the tests below load; a new kind must get a loader test."""
    kinds = {"": {".yaml"}, "ablations": {".yaml"}, "accelerate": {".yaml", ".json"}, "data": {".jsonl"}}
    for path in _recipe_files():
        folder = path.parent.relative_to(RECIPES).as_posix().replace(".", "")
        assert folder in kinds and path.suffix in kinds[folder], f"{path}: no loader test covers this recipe file"


@pytest.mark.parametrize("path", [p for p in _recipe_files() if p.parent == RECIPES], ids=lambda p: p.name)
def test_every_limo_recipe_loads(path):
    recipe = load_recipe(path)
    raw = load_yaml(path)
    assert recipe.name == raw.get("name", path.stem)
    assert (recipe.curate is not None) == ("pool" in raw)
    assert (recipe.train is not None) == ("train" in raw)
    assert (recipe.eval is not None) == ("eval" in raw)
    assert recipe.curate or recipe.train or recipe.eval, f"{path}: a recipe with no section"


@pytest.mark.parametrize("path", _recipe_files("ablations"), ids=lambda p: p.name)
def test_every_ablation_grid_loads_with_its_recipe(path):
    from limo.experiment import load_grid

    grid, recipe = load_grid(path)
    assert grid.variants and recipe.curate and recipe.train and recipe.eval
    for model, changes in grid.model_train.items():  # every per-model train override is valid
        assert replace_fields(recipe.train, {**changes, "model": model}).model == model


@pytest.mark.parametrize("path", _recipe_files("accelerate"), ids=lambda p: p.name)
def test_every_accelerate_config_loads(path):
    """accelerate configs are not limo recipes: accelerate's own loader reads them; DeepSpeed files are JSON."""
    if path.suffix == ".json":
        assert "zero_optimization" in json.loads(path.read_text())
        return
    from accelerate.commands.config.config_args import ClusterConfig

    cfg = ClusterConfig.from_yaml_file(str(path))
    ds_file = (cfg.deepspeed_config or {}).get("deepspeed_config_file")
    if ds_file:
        assert (REPO_ROOT / ds_file).is_file(), f"{path}: {ds_file} not found"


def test_demo_pool_data_loads():
    from limo.io import read_jsonl

    rows = read_jsonl(RECIPES / "data" / "demo_pool.jsonl")
    assert rows and all(r.get("problem") for r in rows)


@pytest.mark.slow
def test_limo_eval_takes_a_recipe(tmp_path):
    """`limo eval --recipe R --set eval.KEY=VALUE`: the recipe's eval: section, once parsed, runs (real model)."""
    from limo.cli import main

    recipe = _write(
        tmp_path,
        {
            "eval": {
                "benchmarks": [str(REPO_ROOT / "tests" / "data" / "tiny_bench.jsonl")],
                "max_tokens": 8,
                "limit": 3,
                "engine": {"engine": "hf", "batch_size": 2},
            }
        },
    )
    out, cache = tmp_path / "ev", tmp_path / "gen.sqlite"
    main(["eval", "-o", str(out), "--recipe", str(recipe), "--set", "eval.limit=1", "--cache", str(cache)])
    results = json.loads((out / "results.json").read_text())
    assert results["limit"] == 1  # the override, not the file's 3
    assert cache.exists()  # --cache applies on top of the recipe
