"""Recipe files: `load_recipe(path, overrides) -> Recipe`, one typed object per file, parsed once.

A recipe has top-level `name`, `seed`, `description`, the curation sections (limo.curate.CurateRecipe; `curate` is
None when the file has no `pool:`), `train:` (limo.train.sft.TrainConfig) and `eval:` (limo.eval.run.EvalConfig).
curate, train, eval, run, experiment and --plan all take the Recipe. The sections are built by limo.config.build,
which names the bad key; every error here is one line naming the file.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from limo.config import apply_overrides, load_yaml
from limo.curate import CURATE_KEYS, CurateRecipe, build_curate_recipe
from limo.errors import LimoError
from limo.eval.run import EvalConfig
from limo.train.sft import TrainConfig, build_train_config

TOP_LEVEL_KEYS = ("name", "seed", "description", "train", "eval")


@dataclass
class Recipe:
    """One recipe file, parsed once. A section is None when the file does not have it."""

    path: str
    name: str
    seed: int
    curate: CurateRecipe | None
    train: TrainConfig | None
    eval: EvalConfig | None

    def need(self, *sections: str, command: str) -> None:
        """Refuse (one line) when a command needs a section the file does not have."""
        for section in sections:
            if getattr(self, section) is None:
                key = "pool" if section == "curate" else section
                article = "an" if key[0] in "aeiou" else "a"
                raise LimoError(f"{self.path}: `limo {command}` needs {article} '{key}:' section")


def load_recipe(path: str | Path, overrides: list[str] | None = None, default_section: str | None = None) -> Recipe:
    """Parse a recipe file (plus `--set a.b=value` overrides) into a Recipe.

    `default_section`: an override whose first key names no section is read as `<section>.<key>`
    (`limo train --set epochs=1` means `train.epochs=1`, `--set seed=1` means `train.seed=1`).
    """
    data = load_yaml(path)
    overrides = list(overrides or [])
    if default_section:  # a key that names no section is the default section's (`seed=1` is train.seed there)
        known = ({"train", "eval"} | set(CURATE_KEYS)) - {"seed"}
        overrides = [
            o if o.split("=", 1)[0].split(".")[0].strip() in known else f"{default_section}.{o}" for o in overrides
        ]
    apply_overrides(data, overrides)
    unknown = sorted(set(data) - set(TOP_LEVEL_KEYS) - set(CURATE_KEYS))
    if unknown:
        raise LimoError(
            f"{path}: unknown top-level key(s) {unknown}; known: {sorted([*TOP_LEVEL_KEYS, *CURATE_KEYS])}"
        )
    name, seed = data.get("name") or Path(path).stem, data.get("seed", 0)
    if not isinstance(name, str):
        raise LimoError(f"{path}: name: expected a string, got {name!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise LimoError(f"{path}: seed: expected an integer, got {seed!r}")
    curate = None
    if "pool" in data:
        curate = build_curate_recipe({k: v for k, v in data.items() if k in CURATE_KEYS}, where=f"{path}: recipe")
    elif set(data) & (set(CURATE_KEYS) - {"seed"}):
        stray = sorted(set(data) & (set(CURATE_KEYS) - {"seed"}))
        raise LimoError(f"{path}: curation keys {stray} without a 'pool:' section; add pool: or remove them")
    return Recipe(
        path=str(path),
        name=name,
        seed=seed,
        curate=curate,
        train=_section(data, "train", path, lambda d, where: build_train_config(d, where)),
        eval=_section(data, "eval", path, lambda d, where: EvalConfig.from_dict(d, where=where)),
    )


def _section(data: dict[str, Any], key: str, path: str | Path, make: Any) -> Any:
    if key not in data:
        return None
    value = data[key]
    if not isinstance(value, dict):
        raise LimoError(f"{path}: '{key}:' must be a mapping of settings, got {value!r}")
    return make(value, f"{path}: {key}")
