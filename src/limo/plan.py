"""`--plan`: what a recipe will do and what it can cost, before anything is generated.

    limo curate recipes/limo-v3.yaml --plan --out DIR      # prints the plan, writes DIR/plan.json, generates nothing
    limo run recipes/limo-v3.yaml --plan --out DIR         # + the resolved training and eval settings
    limo experiment recipes/ablations/x.yaml --plan --out DIR

The plan lists every stage with its models (engine, samples per problem, sampling) and thresholds, the resolved
`train:` and `eval:` settings, an UPPER BOUND on the generations and output tokens of every model (each stage is
assumed to pass on every row it may receive: pool rows are counted offline, hub sources without `limit` count as
unknown unless `--pool-rows N` is given), and a GPU-hour range per model at a stated output throughput per model
size (limo.plan_budget.THROUGHPUT; override with `--throughput FILE.yaml`). Adaptive sampling, caching and filters
only make the real numbers smaller. The JSON keys are stable; docs/FIDELITY.md documents them (PLAN_VERSION bumps
on any incompatible change).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from limo.errors import LimoError
from limo.plan_budget import budget, load_throughput, print_plan

if TYPE_CHECKING:
    from limo.curate import CurateRecipe
    from limo.eval.run import EvalConfig
    from limo.recipes import Recipe
    from limo.stages.common import ModelSpec
    from limo.train.sft import TrainConfig

PLAN_VERSION = 1

# -- counting inputs offline ---------------------------------------------------------------------------------------


def _count_rows(path: Path) -> int | None:
    """Rows of a local JSONL (lines) or Parquet (metadata) file; None for anything else."""
    if not path.is_file():
        return None
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    if path.suffix in (".jsonl", ".ndjson"):
        with path.open("rb") as f:
            return sum(1 for line in f if line.strip())
    return None


def pool_sources(curate: CurateRecipe, assume_rows: int | None) -> list[dict[str, Any]]:
    from limo.stages.pool import resolve_path

    out = []
    for s in curate.pool.sources:
        rows, how = None, "unknown offline (a hub dataset); pass --pool-rows N or set limit"
        if s.path is not None:
            rows = _count_rows(resolve_path(s.path))
            how = "counted" if rows is not None else "unknown (not a local .jsonl/.parquet file)"
        elif assume_rows is not None:
            rows, how = assume_rows, "assumed (--pool-rows)"
        if s.limit is not None:
            rows, how = (s.limit, "limit") if rows is None else (min(rows, s.limit), f"{how}, capped by limit")
        out.append({"name": s.name, "path": s.path, "hf_id": s.hf_id, "rows": rows, "rows_from": how})
    return out


def _benchmark_rows(name: str) -> int | None:
    from limo.eval.benchmarks import resolve
    from limo.paths import data_dir

    spec = resolve(name)
    if spec.file is None:
        return None
    path = Path(spec.file)
    return _count_rows(path if path.is_absolute() else data_dir() / "benchmarks" / path)


# -- bounds --------------------------------------------------------------------------------------------------------


def _min(*values: int | None) -> int | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


def _times(a: int | None, b: int) -> int | None:
    return None if a is None else a * b


def model_entry(spec: ModelSpec, stage: str, role: str, problems_max: int | None) -> dict[str, Any]:
    """One model in one stage: how it is served and sampled, and its generation bound."""
    generations = _times(problems_max, spec.n)
    return {
        "stage": stage,
        "role": role,
        "model": spec.engine.model,
        "engine": spec.engine.engine,
        "samples_per_problem": spec.n,
        "temperature": spec.sampling.temperature,
        "top_p": spec.sampling.top_p,
        "max_tokens": spec.sampling.max_tokens,
        "problems_max": problems_max,
        "max_generations": generations,
        "max_output_tokens": _times(generations, spec.sampling.max_tokens),
    }


def curate_plan(curate: CurateRecipe, assume_rows: int | None) -> tuple[list[dict], list[dict], int | None]:
    """(stages, generation entries, bound on rows reaching `select`), walking the stages in order."""
    sources = pool_sources(curate, assume_rows)
    rows: int | None = sum(s["rows"] for s in sources) if all(s["rows"] is not None for s in sources) else None
    stages: list[dict[str, Any]] = [{"stage": "pool", "sources": sources, "rows_max": rows}]
    entries: list[dict[str, Any]] = []
    d = curate.dedup
    stages.append(
        {
            "stage": "dedup",
            "exact": d.exact,
            "near": d.near,
            "threshold": d.threshold,
            "keep_priority": d.keep_priority,
            "rows_max": rows,
        }
    )
    c = curate.decontaminate
    stages.append(
        {
            "stage": "decontaminate",
            "enabled": c.enabled,
            "benchmarks": c.benchmarks or "all registered",
            "ngram": c.ngram,
            "fuzzy_threshold": c.fuzzy_threshold,
            "rows_max": rows,
        }
    )

    diff = curate.difficulty
    models = []
    if diff.enabled:
        rows = _min(rows, diff.max_problems)
        if diff.weak is not None:
            weak = model_entry(diff.weak, "difficulty", "weak", rows)
            weak["threshold"] = {"drop_if_solved_at_least": diff.weak_drop_at, "of": diff.weak.n}
            models.append(weak)
        for spec in diff.strong:
            strong = model_entry(spec, "difficulty", "strong", rows)
            strong["band"] = {"min_solved": spec.min_solved, "max_solved": spec.max_solved, "of": spec.n}
            models.append(strong)
    entries += models
    stages.append(
        {
            "stage": "difficulty",
            "enabled": diff.enabled,
            "max_problems": diff.max_problems,
            "round_size": diff.round_size,
            "early_stop_eps": diff.early_stop_eps,
            "models": models,
            "rows_max": rows,
        }
    )

    div = curate.diversity
    if div.enabled:
        rows = _min(rows, div.target_size)
    stages.append(
        {
            "stage": "diversity",
            "enabled": div.enabled,
            "target_size": div.target_size,
            "allocation": div.allocation,
            "rows_max": rows,
        }
    )

    sol = curate.solutions
    models = [model_entry(spec, "solutions", "candidates", rows) for spec in sol.models]
    entries += models
    per_problem = sum(m.n for m in sol.models) + len(sol.columns)
    candidates = _times(rows, per_problem)
    stages.append(
        {
            "stage": "solutions",
            "models": models,
            "columns": sol.columns,
            "candidates_per_problem_max": per_problem,
            "rows_max": candidates,
        }
    )
    stages.append(
        {
            "stage": "verify",
            "timeout_s": curate.verify.timeout_s,
            "drop_truncated": curate.verify.drop_truncated,
            "rows_max": candidates,
        }
    )

    score = curate.score
    judge = None
    if score.judge is not None:
        judge = model_entry(score.judge, "score", "judge", candidates)
        entries.append(judge)
    stages.append(
        {
            "stage": "score",
            "profile": score.profile,
            "weights": score.weights,
            "levels": score.levels,
            "judge": judge,
            "rows_max": candidates,
        }
    )
    sel = curate.select
    stages.append(
        {
            "stage": "select",
            "target_size": sel.target_size,
            "min_quality_level": sel.min_quality_level,
            "rows_max": _min(rows, sel.target_size),
        }
    )
    stages.append({"stage": "export", "dataset_name": curate.export.dataset_name})
    return stages, entries, _min(rows, sel.target_size)


def eval_plan(cfg: EvalConfig, models: list[str]) -> tuple[dict[str, Any], list[dict]]:
    """The resolved eval settings per benchmark (the protocol after the config's overrides) and the generation
    bound for every evaluated model (and for the answer judge, when the config has one)."""
    benchmarks = []
    for name in cfg.benchmarks:
        proto = cfg.benchmark_protocol(name)
        benchmarks.append(
            {
                "name": name,
                "problems": _min(_benchmark_rows(name), cfg.limit),
                "samples_per_problem": proto.n,
                "temperature": proto.temperature,
                "top_p": proto.top_p,
                "max_tokens": proto.max_tokens,
                "metric": proto.metric,
                "grading": proto.grading,
            }
        )
    entries = []
    for model in models:
        for b in benchmarks:
            generations = _times(b["problems"], b["samples_per_problem"])
            entry = {
                "stage": "eval",
                "role": b["name"],
                "model": model,
                "engine": cfg.engine.engine,
                "samples_per_problem": b["samples_per_problem"],
                "temperature": b["temperature"],
                "top_p": b["top_p"],
                "max_tokens": b["max_tokens"],
                "problems_max": b["problems"],
                "max_generations": generations,
                "max_output_tokens": _times(generations, b["max_tokens"]),
            }
            entries.append(entry)
            if cfg.judge is not None:  # at most one judge call per sample
                entries.append(
                    {
                        **entry,
                        "stage": "eval-judge",
                        "model": cfg.judge,
                        "engine": cfg.judge_engine.engine if cfg.judge_engine else entry["engine"],
                        "samples_per_problem": 1,
                        "temperature": 0.0,
                        "max_tokens": cfg.judge_max_tokens,
                        "problems_max": generations,
                        "max_generations": generations,
                        "max_output_tokens": _times(generations, cfg.judge_max_tokens),
                    }
                )
    resolved = {
        "protocol": cfg.protocol,
        "engine": dataclasses.asdict(cfg.engine),
        "benchmarks": benchmarks,
        "models": models,
        "judge": cfg.judge,
        "seed": cfg.seed,
    }
    return resolved, entries


def train_plan(cfg: TrainConfig, examples_max: int | None) -> dict[str, Any]:
    """The resolved training settings, and bounds on examples and optimizer steps."""
    resolved = dataclasses.asdict(cfg)
    steps = None
    if examples_max is not None:
        steps = cfg.max_steps if cfg.max_steps > 0 else math.ceil(examples_max * cfg.epochs / cfg.global_batch_size)
    return {
        "settings": resolved,
        "examples_max": examples_max,
        "optimizer_steps_max": steps,
        "trained_tokens_max": _times(examples_max, cfg.cutoff) if examples_max is not None else None,
    }


def build_plan(
    recipe: Recipe,
    command: str,
    throughput: dict[str, list[float]] | None = None,
    assume_pool_rows: int | None = None,
    eval_models: list[str] | None = None,
    train_runs: int = 1,
) -> dict[str, Any]:
    """The plan of `limo <command>` on `recipe`. `eval_models`: the models `limo run`/`experiment` evaluate
    (default: the base model and the fine-tuned one); `train_runs`: fine-tuning runs (experiment grids)."""
    throughput = throughput or load_throughput(None)
    stages: list[dict] = []
    entries: list[dict] = []
    examples_max = None
    if recipe.curate is not None and command in ("curate", "run", "experiment"):
        stages, entries, examples_max = curate_plan(recipe.curate, assume_pool_rows)
    plan: dict[str, Any] = {
        "plan_version": PLAN_VERSION,
        "command": command,
        "recipe": {"path": recipe.path, "name": recipe.name, "seed": recipe.seed},
        "stages": stages,
        "train": None,
        "eval": None,
    }
    if command in ("run", "experiment") and recipe.train is not None:
        plan["train"] = {**train_plan(recipe.train, examples_max), "runs": train_runs}
    if command in ("run", "experiment") and recipe.eval is not None:
        base = recipe.train.model if recipe.train else recipe.eval.model
        models = eval_models or [base, f"{base} (fine-tuned)"]
        plan["eval"], eval_entries = eval_plan(recipe.eval, models)
        entries += eval_entries
    plan["generations"] = entries
    plan["budget"] = budget(entries, throughput)
    plan["assumptions"] = {
        "bounds": "every stage passes every row it may receive; adaptive sampling, the cache and filters only lower "
        "the real numbers",
        "pool_rows_assumed": assume_pool_rows,
        "throughput_tokens_per_s_per_gpu": throughput,
        "throughput_source": "limo.plan.THROUGHPUT (assumed, not measured) unless --throughput replaced it",
    }
    return plan


def experiment_plan(
    grid_path: str | Path,
    overrides: list[str] | None = None,
    throughput: dict[str, list[float]] | None = None,
    assume_pool_rows: int | None = None,
) -> dict[str, Any]:
    """The plan of `limo experiment GRID`: one curation, then every variant x base model trained and evaluated."""
    from limo.experiment import load_grid

    grid, recipe = load_grid(grid_path, overrides)
    models = grid.models or [recipe.train.model]  # type: ignore[union-attr]
    evaluated = list(models) if grid.include_base else []
    evaluated += [f"{m} (fine-tuned: {v.name})" for v in grid.variants for m in models]
    plan = build_plan(recipe, "experiment", throughput, assume_pool_rows, evaluated, len(grid.variants) * len(models))
    plan["experiment"] = {
        "grid": str(grid_path),
        "name": grid.name,
        "variants": [v.name for v in grid.variants],
        "models": models,
        "include_base": grid.include_base,
    }
    return plan


def plan_command(
    command: str,
    path: str | Path,
    out_dir: str | Path,
    overrides: list[str] | None = None,
    pool_rows: int | None = None,
    throughput_path: str | Path | None = None,
    skip_base_eval: bool = False,
) -> dict[str, Any]:
    """`limo curate|run|experiment ... --plan`: build, write OUT/plan.json, print; nothing is generated."""
    if pool_rows is not None and pool_rows < 1:
        raise LimoError(f"--pool-rows must be >= 1, got {pool_rows}")
    throughput = load_throughput(throughput_path)
    if command == "experiment":
        plan = experiment_plan(path, overrides, throughput, pool_rows)
    else:
        from limo.recipes import load_recipe

        recipe = load_recipe(path, overrides)
        recipe.need(*(("curate",) if command == "curate" else ("curate", "train", "eval")), command=command)
        tuned = [f"{recipe.train.model} (fine-tuned)"] if skip_base_eval and recipe.train else None
        plan = build_plan(recipe, command, throughput, pool_rows, tuned)
    print_plan(plan, write_plan(plan, out_dir))
    return plan


def write_plan(plan: dict[str, Any], out_dir: str | Path) -> Path:
    from limo.io import write_json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "plan.json", plan)
    return out / "plan.json"
