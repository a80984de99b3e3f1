"""`limo experiment GRID.yaml --out DIR`: the paper's ablations (LIMO v3 §6.3) as one command.

A grid names a base recipe (curation + train + eval), dataset variants and base models. The curation runs once;
each variant is then cut from its outputs (limo.variants), trained on every base model and evaluated on the
recipe's benchmarks:

    name: quality-ablation
    recipe: ../demo.yaml          # relative to the grid file
    models: [smollm2-135m]        # default: the recipe's train.model
    model_train: {mistralai/Mistral-Small-24B-Instruct-2501: {chat_template: mistral}}  # per-model train keys
    include_base: true            # also evaluate each base model without fine-tuning
    set: [train.epochs=1]         # overrides applied to the recipe
    draw_from: selected           # or `problems`: draw from the curated problems, then solve only those
    variants:
      - {name: L5, quality_level: 5, sample_count: 500}           # same problems at every level
      - {name: simple, levels: [1, 2], sample_count: 500, subset: random}
      - {name: n400, sample_count: 400}                           # the top 400 in selection rank order
      - {name: all}                                               # the curated set as selected

`draw_from: problems` (the difficulty ablation) runs the curation up to `diversity`, draws each variant's problems,
then runs `solutions`, `verify` (unless `verify_solutions: false`), `score` and `select` on them in
DIR/variants/<variant>/curate/. Every variant must reach its `sample_count`: a shortfall stops the run before any
training, naming the variant, its size and the shortfall (checked after drawing and again after solving).

    DIR/curate/                         the shared curation run
    DIR/variants/<variant>/data.jsonl   the variant's training set (chat messages)
    DIR/variants/<variant>/<model>/{train,eval}/
    DIR/experiment.json, DIR/experiment.md, DIR/accuracy_vs_samples.png, DIR/accuracy_vs_quality.png
"""

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from limo.config import apply_overrides, build, load_yaml, replace_fields
from limo.errors import LimoError
from limo.io import atomic_write_text, write_json, write_jsonl
from limo.recipes import Recipe, load_recipe
from limo.variants import Variant, check_sizes, variant_rows


@dataclass
class Grid:
    recipe: str
    variants: list[Variant]
    name: str = "experiment"
    models: list[str] = field(default_factory=list)
    model_train: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-model train overrides
    include_base: bool = False
    set: list[str] = field(default_factory=list)
    draw_from: Literal["selected", "problems"] = "selected"
    verify_solutions: bool = True  # draw_from: problems only; false keeps unverified solutions (CPU stand-ins)

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


def _stage_rows(run_dir: Path, stage_names: list[str], name: str) -> list[dict]:
    from limo.runs import Run

    if name not in stage_names:
        raise LimoError(f"the recipe's curation has no '{name}' stage")
    return Run(run_dir).load(stage_names.index(name) + 1, name).to_list()


@dataclass
class VariantData:
    variant: Variant
    rows: list[dict]
    counts: dict[str, int]
    path: Path  # DIR/variants/<variant>/data.jsonl


def _solve_problems(grid: Grid, recipe: Recipe, variant: Variant, problems: list[dict], vdir: Path, cache: Path):
    """Curation part 2 (solutions, verify, score, select) on one variant's drawn problems; the selected rows."""
    from datasets import Dataset

    from limo.curate import curate_stages
    from limo.runs import Run, StageContext, run_stages

    names = ("solutions", "verify", "score", "select") if grid.verify_solutions else ("solutions", "score", "select")
    stages = [s for s in curate_stages(recipe.curate) if s.name in names]
    select = next(s for s in stages if s.name == "select")
    select.config = dataclasses.replace(select.config, target_size=len(problems))

    def context(stage_dir: Path) -> StageContext:
        return StageContext(run_dir=vdir, stage_dir=stage_dir, generation_cache=cache, seed=recipe.curate.seed)

    return run_stages(Run(vdir), stages, Dataset.from_list(problems), context).to_list()


def prepare_variants(grid: Grid, recipe: Recipe, out_dir: Path, cache: Path | None = None) -> list[VariantData]:
    """Run the curation, cut every variant, check every size (before any training) and write each data.jsonl."""
    from limo.curate import curate_stages, run_curate
    from limo.paths import default_generation_cache
    from limo.runs import Run, StageContext, run_stages
    from limo.stages.export import messages_of

    cache = cache or default_generation_cache()
    curate_dir = out_dir / "curate"
    names = [s.name for s in curate_stages(recipe.curate)]
    drawn: list[tuple[Variant, list[dict], dict[str, int]]] = []
    if grid.draw_from == "problems":
        part1 = curate_stages(recipe.curate)[: names.index("diversity") + 1]

        def context(stage_dir: Path) -> StageContext:
            return StageContext(run_dir=curate_dir, stage_dir=stage_dir, generation_cache=cache, seed=recipe.seed)

        from datasets import Dataset

        problems = run_stages(Run(curate_dir), part1, Dataset.from_dict({}), context).to_list()
        drawn = [(v, *variant_rows(v, [], problems)) for v in grid.variants]
        check_sizes([(v, len(rows), counts) for v, rows, counts in drawn], "when drawing problems")
        drawn = [
            (v, _solve_problems(grid, recipe, v, rows, out_dir / "variants" / v.name / "curate", cache), counts)
            for v, rows, counts in drawn
        ]
    else:
        run_curate(recipe.curate, curate_dir, cache)
        scored = _stage_rows(curate_dir, names, "score")
        selected = _stage_rows(curate_dir, names, "select")
        drawn = [(v, *variant_rows(v, scored, selected)) for v in grid.variants]
    empty = [v.name for v, rows, _ in drawn if not rows]
    if empty:
        raise LimoError(f"variant(s) {empty} have no training rows; loosen their filters")
    check_sizes([(v, len(rows), counts) for v, rows, counts in drawn], "with verified solutions")
    out = []
    for variant, rows, counts in drawn:
        path = out_dir / "variants" / variant.name / "data.jsonl"
        rows = sorted(rows, key=lambda r: r["id"])
        write_jsonl(path, [{"id": r["id"], "messages": messages_of(r, recipe.curate.export)} for r in rows])
        out.append(VariantData(variant, rows, counts, path))
    return out


def run_experiment(
    grid_path: str | Path,
    out_dir: str | Path,
    overrides: list[str] | None = None,
    cache: str | Path | None = None,
    data_only: bool = False,
) -> dict:
    """Curate, cut the variants, then train and evaluate each on every model (`data_only`: stop after the data)."""
    from limo.engines.base import local_fingerprint
    from limo.pipeline import eval_step, train_step

    grid, recipe = load_grid(grid_path, overrides)
    out_dir = Path(out_dir)
    cache_path = Path(cache) if cache else None
    prepared = prepare_variants(grid, recipe, out_dir, cache_path)
    if data_only:
        return {
            "name": grid.name,
            "variants": {d.variant.name: {"examples": len(d.rows), **d.counts} for d in prepared},
        }
    models = grid.models or [recipe.train.model]

    entries: list[dict[str, Any]] = []
    if grid.include_base:
        for model in models:
            res = eval_step(recipe.eval, model, out_dir / "base" / _slug(model) / "eval", cache_path)
            entries.append(_entry("base", model, None, {}, res, out_dir / "base" / _slug(model) / "eval"))
    for d in prepared:
        for model in models:
            mdir = d.path.parent / _slug(model)
            changes = {**grid.model_train.get(model, {}), "model": model}
            train_cfg = replace_fields(recipe.train, changes, f"{grid_path}: model_train.{model}")
            model_dir, _ = train_step(train_cfg, d.path, mdir / "train")
            res = eval_step(recipe.eval, str(model_dir), mdir / "eval", cache_path, local_fingerprint(str(model_dir)))
            data = {"examples": len(d.rows), **d.counts}
            entries.append(_entry(d.variant.name, model, d.variant, data, res, mdir / "eval"))
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
