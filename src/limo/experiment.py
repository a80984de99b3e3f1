"""`limo experiment GRID.yaml --out DIR`: the paper's ablations (LIMO §5) as one command.

A grid names a base recipe (curation + train + eval), dataset variants and base models. The curation runs once;
each variant is then cut from its outputs, trained on every base model and evaluated on the recipe's benchmarks:

    name: quality-ablation
    recipe: ../demo.yaml          # relative to the grid file
    models: [smollm2-135m]        # default: the recipe's train.model
    model_train: {mistralai/Mistral-Small-24B-Instruct-2501: {chat_template: mistral}}  # per-model train keys
    include_base: true            # also evaluate each base model without fine-tuning
    set: [train.epochs=1]         # overrides applied to the recipe
    variants:
      - {name: L5, quality_level: 5}          # LIMO §5.2 (RQ1): solutions of one quality level, same problems
      - {name: simple, levels: [1, 2]}        # LIMO §5.3 (RQ2): problem difficulty (MATH levels / sources)
      - {name: n100, sample_count: 100}       # LIMO §5.6: number of training samples
      - {name: all}                           # the curated set as selected

Variant fields: `quality_level` picks, per problem, the best verified candidate at that level (from the score
stage), else the selected set (select stage) is filtered by `levels`, `subjects`, `sources`, `tiers`
(difficulty_tier), then `sample_count` draws a seeded subset. Problems a variant cannot serve are counted.

    DIR/curate/                         the shared curation run
    DIR/variants/<variant>/data.jsonl   the variant's training set (chat messages)
    DIR/variants/<variant>/<model>/{train,eval}/
    DIR/experiment.json, DIR/experiment.md, DIR/accuracy_vs_samples.png, DIR/accuracy_vs_quality.png
"""

import dataclasses
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from limo.errors import LimoError
from limo.io import atomic_write_text, write_json, write_jsonl
from limo.recipes import Recipe, apply_overrides, build, load_recipe, load_yaml, replace_fields


@dataclass
class Variant:
    name: str
    quality_level: int | None = None
    levels: list[int] | None = None
    subjects: list[str] | None = None
    sources: list[str] | None = None
    tiers: list[str] | None = None
    sample_count: int | None = None
    seed: int = 0

    def __post_init__(self):
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name):
            raise ValueError(f"variant name must be letters, digits, . _ or -, got {self.name!r}")
        if self.quality_level is not None and not 1 <= self.quality_level <= 5:
            raise ValueError(f"quality_level must be in 1..5, got {self.quality_level}")
        if self.sample_count is not None and self.sample_count < 1:
            raise ValueError("sample_count must be >= 1")


@dataclass
class Grid:
    recipe: str
    variants: list[Variant]
    name: str = "experiment"
    models: list[str] = field(default_factory=list)
    model_train: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-model train overrides
    include_base: bool = False
    set: list[str] = field(default_factory=list)

    def __post_init__(self):
        if not self.variants:
            raise ValueError("variants: give at least one")
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique, got {names}")


def load_grid(path: str | Path, overrides: list[str] | None = None) -> tuple[Grid, Recipe]:
    """The grid and its base recipe (limo.recipes.load_recipe, with the grid's `set:` overrides)."""
    path = Path(path)
    grid = build(Grid, apply_overrides(load_yaml(path), list(overrides or [])), str(path))
    recipe = load_recipe((path.parent / grid.recipe).resolve(), list(grid.set))
    recipe.need("curate", "train", "eval", command="experiment")
    return grid, recipe


def _slug(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", model.strip("/"))[-60:]


def _best(rows: list[dict]) -> dict:
    return min(rows, key=lambda r: (-float(r.get("quality_score") or 0.0), r["candidate_id"]))


def variant_rows(variant: Variant, scored: list[dict], selected: list[dict]) -> tuple[list[dict], dict]:
    """The training rows of one variant, and what it could not serve (counted)."""
    counts: dict[str, int] = {}
    if variant.quality_level is not None:
        by_problem: dict[str, list[dict]] = {}
        for row in scored:
            by_problem.setdefault(row["id"], []).append(row)
        rows = []
        for pid in sorted(by_problem):
            at_level = [r for r in by_problem[pid] if r.get("quality_level") == variant.quality_level]
            if at_level:
                rows.append(_best(at_level))
            else:
                counts["no_candidate_at_level"] = counts.get("no_candidate_at_level", 0) + 1
    else:
        rows = list(selected)
    for key, column in (
        ("levels", "level"),
        ("subjects", "subject"),
        ("sources", "source"),
        ("tiers", "difficulty_tier"),
    ):
        allowed = getattr(variant, key)
        if allowed is not None:
            kept = [r for r in rows if r.get(column) in allowed]
            if len(kept) < len(rows):
                counts[f"not_in_{key}"] = len(rows) - len(kept)
            rows = kept
    if variant.sample_count is not None:
        if variant.sample_count < len(rows):
            counts["not_sampled"] = len(rows) - variant.sample_count
            rows = random.Random(variant.seed).sample(sorted(rows, key=lambda r: r["id"]), variant.sample_count)
        elif variant.sample_count > len(rows):
            counts["short_of_sample_count"] = variant.sample_count - len(rows)
    return sorted(rows, key=lambda r: r["id"]), counts


def _stage_rows(run_dir: Path, stage_names: list[str], name: str) -> list[dict]:
    from limo.runs import Run

    if name not in stage_names:
        raise LimoError(f"the recipe's curation has no '{name}' stage")
    return Run(run_dir).load(stage_names.index(name) + 1, name).to_list()


def run_experiment(
    grid_path: str | Path, out_dir: str | Path, overrides: list[str] | None = None, cache: str | Path | None = None
) -> dict:
    from limo.curate import curate_stages, run_curate
    from limo.engines.base import local_fingerprint
    from limo.pipeline import eval_step, train_step
    from limo.stages.export import messages_of

    grid, recipe = load_grid(grid_path, overrides)
    out_dir = Path(out_dir)
    cache_path = Path(cache) if cache else None
    curate_recipe = recipe.curate
    curate_dir = out_dir / "curate"
    run_curate(curate_recipe, curate_dir, cache_path)
    names = [s.name for s in curate_stages(curate_recipe)]
    scored = _stage_rows(curate_dir, names, "score")
    selected = _stage_rows(curate_dir, names, "select")
    models = grid.models or [recipe.train.model]

    entries: list[dict[str, Any]] = []
    if grid.include_base:
        for model in models:
            res = eval_step(recipe.eval, model, out_dir / "base" / _slug(model) / "eval", cache_path)
            entries.append(_entry("base", model, None, {}, res, out_dir / "base" / _slug(model) / "eval"))
    for variant in grid.variants:
        rows, counts = variant_rows(variant, scored, selected)
        vdir = out_dir / "variants" / variant.name
        if not rows:
            raise LimoError(f"variant '{variant.name}' has no training rows ({counts}); loosen its filters")
        data = vdir / "data.jsonl"
        write_jsonl(data, [{"id": r["id"], "messages": messages_of(r, curate_recipe.export)} for r in rows])
        for model in models:
            mdir = vdir / _slug(model)
            changes = {**grid.model_train.get(model, {}), "model": model}
            train_cfg = replace_fields(recipe.train, changes, f"{grid_path}: model_train.{model}")
            model_dir, _ = train_step(train_cfg, data, mdir / "train")
            res = eval_step(
                recipe.eval, str(model_dir), mdir / "eval", cache_path, local_fingerprint(str(model_dir))
            )
            entries.append(_entry(variant.name, model, variant, {"examples": len(rows), **counts}, res, mdir / "eval"))
    result = {"name": grid.name, "grid": str(grid_path), "benchmarks": _benchmarks(entries), "entries": entries}
    write_json(out_dir / "experiment.json", result)
    atomic_write_text(out_dir / "experiment.md", experiment_markdown(result))
    plot_experiment(result, out_dir)
    _print(result)
    return result


def _entry(name: str, model: str, variant: Variant | None, data: dict, results: dict, eval_dir: Path) -> dict:
    return {
        "variant": name,
        "model": model,
        "spec": dataclasses.asdict(variant) if variant else None,
        "data": data,
        "eval_dir": str(eval_dir),
        "scores": {b: r["score"] for b, r in results["benchmarks"].items()},
    }


def _benchmarks(entries: list[dict]) -> list[str]:
    seen: list[str] = []
    for e in entries:
        seen += [b for b in e["scores"] if b not in seen]
    return seen


def _cell(score: dict | None) -> str:
    if score is None:
        return "-"
    return f"{100 * score['value']:.1f} [{100 * score['ci'][0]:.1f}, {100 * score['ci'][1]:.1f}]"


def experiment_markdown(result: dict) -> str:
    benches = result["benchmarks"]
    lines = [
        f"# Experiment: {result['name']}",
        "",
        "| variant | model | examples | " + " | ".join(benches) + " |",
        "|---|---|---:|" + "---:|" * len(benches),
    ]
    for e in result["entries"]:
        cells = [_cell(e["scores"].get(b)) for b in benches]
        lines.append(
            f"| {e['variant']} | {e['model']} | {e['data'].get('examples', '-')} | " + " | ".join(cells) + " |"
        )
    lines += ["", "Scores in % with 95% confidence intervals (see each eval dir's results.json for the method).", ""]
    for png, title in (
        ("accuracy_vs_samples.png", "Accuracy vs sample count"),
        ("accuracy_vs_quality.png", "Accuracy vs quality level"),
    ):
        lines += [f"![{title}]({png})", ""]
    return "\n".join(lines)


def _series(result: dict, key: str) -> dict[tuple[str, str], list[tuple[float, float, float, float]]]:
    """(model, benchmark) -> [(x, value, lo, hi)] over the variants that set `key`."""
    out: dict = {}
    for e in result["entries"]:
        spec = e["spec"] or {}
        x = spec.get(key)
        if key == "sample_count" and x is not None:
            x = e["data"].get("examples", x)
        if x is None:
            continue
        for bench, s in e["scores"].items():
            out.setdefault((e["model"], bench), []).append((x, s["value"], s["ci"][0], s["ci"][1]))
    return out


def plot_experiment(result: dict, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for key, fname, xlabel in (
        ("sample_count", "accuracy_vs_samples.png", "training examples"),
        ("quality_level", "accuracy_vs_quality.png", "solution quality level (L1..L5)"),
    ):
        series = _series(result, key)
        fig, ax = plt.subplots(figsize=(5.5, 3.5))
        for (model, bench), points in sorted(series.items()):
            points.sort()
            xs, ys, lo, hi = zip(*points, strict=True)
            below = [100 * (y - a) for y, a in zip(ys, lo, strict=True)]
            above = [100 * (b - y) for y, b in zip(ys, hi, strict=True)]
            err = [below, above]
            ax.errorbar(xs, [100 * y for y in ys], yerr=err, marker="o", capsize=3, label=f"{bench} ({model})")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("score (%) with 95% CI")
        if not series:
            ax.text(0.5, 0.5, f"no variant sets {key}", ha="center", va="center", transform=ax.transAxes)
        else:
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out_dir / fname, dpi=120)
        plt.close(fig)
        written.append(out_dir / fname)
    return written


def _print(result: dict) -> None:
    from rich.table import Table

    from limo.console import console

    table = Table(title=f"limo experiment: {result['name']}")
    for col in ("variant", "model", "examples", *result["benchmarks"]):
        table.add_column(col)
    for e in result["entries"]:
        table.add_row(
            e["variant"],
            e["model"],
            str(e["data"].get("examples", "-")),
            *[_cell(e["scores"].get(b)) for b in result["benchmarks"]],
        )
    console.print(table)
