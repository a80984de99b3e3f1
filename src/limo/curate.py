"""`limo curate RECIPE.yaml --out RUN`: the curation pipeline, an explicit list of resumable stages.

    RUN/recipe.yaml         the resolved recipe
    RUN/01_pool ... 05_diversity    one row = one problem (curation part 1)
    RUN/06_solutions ... 10_export  candidates, verification, scoring, selection, export (part 2)
    RUN/summary.json        rows in / out and drops per reason for every stage (also printed as a table)

A stage whose `done` marker matches its chained config hash is loaded from disk, so a killed run resumes where it
stopped and a changed stage config reruns that stage and everything after it. Generations go through the
persistent cache (default limo.paths.default_generation_cache(); `--cache` overrides), so a resumed stage never
regenerates a finished sample.

Recipe top-level keys: seed, pool, dedup, decontaminate, difficulty, diversity (+ part 2: solutions, verify, score,
select, export); limo.recipes.load_recipe parses the file once and hands `Recipe.curate` (a CurateRecipe) here.

    limo curate recipes/demo.yaml --out runs/demo --set difficulty.weak.n=4
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from limo.config import build
from limo.io import atomic_write_text, write_json
from limo.runs import Run, Stage, StageContext, run_stages
from limo.stages import decontaminate as decontaminate_stage
from limo.stages import dedup as dedup_stage
from limo.stages import difficulty as difficulty_stage
from limo.stages import diversity as diversity_stage
from limo.stages import export as export_stage
from limo.stages import pool as pool_stage
from limo.stages import score as score_stage
from limo.stages import select as select_stage
from limo.stages import solutions as solutions_stage
from limo.stages import verify as verify_stage
from limo.streaming.executors import ExecutorConfig, make_executor

IGNORED_KEYS = ("name", "description", "train", "eval", "experiment")


@dataclass
class CurateRecipe:
    """One field per stage config, in pipeline order."""

    pool: pool_stage.Config
    seed: int = 0
    # where the streaming stages' per-batch work runs: `executor: local` (default) | `ray` |
    # {kind: ray, address: "ray://head:10001", num_cpus: 2, shard_rows: 65536, batch_rows: 8192}
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    dedup: dedup_stage.Config = field(default_factory=dedup_stage.Config)
    decontaminate: decontaminate_stage.Config = field(default_factory=decontaminate_stage.Config)
    difficulty: difficulty_stage.Config = field(default_factory=difficulty_stage.Config)
    diversity: diversity_stage.Config = field(default_factory=diversity_stage.Config)
    solutions: solutions_stage.Config = field(default_factory=solutions_stage.Config)
    verify: verify_stage.Config = field(default_factory=verify_stage.Config)
    score: score_stage.Config = field(default_factory=score_stage.Config)
    select: select_stage.Config = field(default_factory=select_stage.Config)
    export: export_stage.Config = field(default_factory=export_stage.Config)


CURATE_KEYS = tuple(f.name for f in dataclasses.fields(CurateRecipe))


def curate_stages(recipe: CurateRecipe) -> list[Stage]:
    """The pipeline, in order. RUN/<NN>_<name>/ is numbered by position in this list."""
    return [
        Stage("pool", recipe.pool, pool_stage.run, streaming=True),
        Stage("dedup", recipe.dedup, dedup_stage.run, streaming=True),
        Stage("decontaminate", recipe.decontaminate, decontaminate_stage.run, streaming=True),
        Stage("difficulty", recipe.difficulty, difficulty_stage.run),
        Stage("diversity", recipe.diversity, diversity_stage.run, streaming=True),
        Stage("solutions", recipe.solutions, solutions_stage.run),
        Stage("verify", recipe.verify, verify_stage.run),
        Stage("score", recipe.score, score_stage.run),
        Stage("select", recipe.select, select_stage.run),
        Stage("export", recipe.export, export_stage.run),
    ]


def _seeded(section: Any, cls: type, seed: int) -> Any:
    """Stage configs with a `seed` field take the recipe's top-level seed unless they set their own (so the seed is
    part of the stage's config hash)."""
    section = dict(section or {})
    section.setdefault("seed", seed)
    return section


def build_curate_recipe(data: dict[str, Any], where: str = "recipe") -> CurateRecipe:
    """A CurateRecipe from a (combined) recipe dict; keys of other commands (name, train, eval) are ignored."""
    data = {k: v for k, v in data.items() if k not in IGNORED_KEYS}
    if isinstance(data.get("executor"), str):
        data["executor"] = {"kind": data["executor"]}
    seed = data.get("seed", 0)
    for f in dataclasses.fields(CurateRecipe):
        cls = _config_class(f.name)
        if cls is not None and "seed" in {g.name for g in dataclasses.fields(cls)}:
            data[f.name] = _seeded(data.get(f.name), cls, seed)
    return build(CurateRecipe, data, where)


def _config_class(name: str) -> type | None:
    import typing

    tp = typing.get_type_hints(CurateRecipe).get(name)
    return tp if dataclasses.is_dataclass(tp) else None


def recipe_dict(recipe: CurateRecipe) -> dict[str, Any]:
    return dataclasses.asdict(recipe)


def run_curate(recipe: CurateRecipe, run_dir: str | Path, cache_path: str | Path | None = None) -> Path:
    """Run (or resume) the pipeline in `run_dir` (holding its lock); returns the export dir, RUN/export."""
    run = Run(run_dir)
    with run.lock():
        return _run_locked(recipe, run, cache_path)


def _run_locked(recipe: CurateRecipe, run: Run, cache_path: str | Path | None) -> Path:
    from limo.console import console
    from limo.paths import default_generation_cache

    # a changed decisions file (human review) must rerun select: its digest is part of select's config hash
    decisions = select_stage.decisions_file(recipe.select, run.root)
    recipe.select.decisions_digest = select_stage.decisions_digest(decisions)
    resolved = yaml.safe_dump(recipe_dict(recipe), sort_keys=False, allow_unicode=True)
    atomic_write_text(run.root / "recipe.yaml", resolved)
    cache = Path(cache_path) if cache_path else default_generation_cache()
    stages = curate_stages(recipe)
    summary: list[dict[str, Any]] = []
    executor = make_executor(recipe.executor)

    def context(stage_dir: Path) -> StageContext:
        return StageContext(
            run_dir=run.root, stage_dir=stage_dir, generation_cache=cache, seed=recipe.seed, executor=executor
        )

    def on_stage(name: str, stats: dict, skipped: bool) -> None:
        summary.append({"stage": name, "resumed": skipped, **stats})
        state = "resumed from disk" if skipped else f"{stats.get('seconds', 0):.1f}s"
        console.print(f"[bold]{name}[/bold]: {stats.get('rows_in')} -> {stats.get('rows_out')} rows ({state})")

    from datasets import Dataset

    run_stages(run, stages, Dataset.from_dict({}), context, on_stage)
    write_json(run.root / "summary.json", summary)
    console.print(summary_table(summary))
    return run.root / recipe.export.out_dir  # RUN/export: hf/, messages.jsonl, llamafactory/


def summary_table(summary: list[dict[str, Any]]):
    """One screen: stage, rows in / out, dropped by reason, seconds."""
    from rich.table import Table

    table = Table(title="limo curate")
    for col in ("stage", "rows in", "rows out", "dropped by reason", "seconds"):
        table.add_column(col, justify="right" if col in ("rows in", "rows out", "seconds") else "left")
    for s in summary:
        reasons = ", ".join(f"{k}: {v}" for k, v in s.get("dropped_by_reason", {}).items()) or "-"
        rows_in = s.get("rows_read", s.get("rows_in")) if s["stage"] == "pool" else s.get("rows_in")
        seconds = "resumed" if s.get("resumed") else f"{s.get('seconds', 0):.1f}"
        table.add_row(s["stage"], str(rows_in), str(s.get("rows_out")), reasons, seconds)
    return table
