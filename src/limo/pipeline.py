"""`limo run RECIPE.yaml --out RUN`: curate -> train -> eval (base and fine-tuned) -> report, each step resumable.

    RUN/01_pool ... RUN/10_export, RUN/export/   curation (limo curate; resumable stage by stage)
    RUN/train/                                   the fine-tuned model (limo train; resumes from its checkpoints)
    RUN/eval/base/, RUN/eval/tuned/              limo eval of the base and the fine-tuned model, same benchmarks
    RUN/report/                                  compare.json/.md/.png (paired test) and loss.png
    RUN/report.md, RUN/run_summary.json          the before/after table, the curation and training summaries

The recipe (limo.recipes.Recipe, parsed once) holds the curation sections plus `train:` (TrainConfig; `data` is
filled in with RUN/export/messages.jsonl) and `eval:` (EvalConfig; `model` is filled in: the train model, then
RUN/train). Train and eval steps write the same `done` marker as curation stages (limo.runs.mark_done) holding the
hash of their config and inputs, so a rerun skips finished steps and redoes changed ones; generations come from the
persistent cache either way.

    limo run recipes/demo.yaml --out runs/demo
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from limo.config import config_hash
from limo.errors import LimoError
from limo.io import write_json
from limo.runs import clear_done, done_key, mark_done

if TYPE_CHECKING:
    from limo.eval.run import EvalConfig
    from limo.recipes import Recipe
    from limo.train.sft import TrainConfig


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.exists() else ""


def export_messages(run_dir: Path, recipe: Any) -> Path:
    path = run_dir / recipe.export.out_dir / "messages.jsonl"
    if not path.exists():
        raise LimoError(f"{path}: curation produced no messages export (is 'messages' in export.formats?)")
    if not path.read_text(encoding="utf-8").strip():
        raise LimoError(f"{path}: the curated dataset is empty; nothing to train on (see {run_dir}/datacard.md)")
    return path


def train_step(train: TrainConfig, messages: Path, out_dir: Path) -> tuple[Path, dict]:
    """Train on `messages` (or skip when done with the same config and data). Returns the model dir and summary."""
    from limo.train.sft import run_train

    cfg = dataclasses.replace(train, data=str(messages))
    key = config_hash({"train": dataclasses.asdict(cfg), "data": _digest(messages)})
    if done_key(out_dir) != key:
        clear_done(out_dir)
        run_train(cfg, out_dir)
        mark_done(out_dir, key)
    summary_path = out_dir / "train_summary.json"
    return out_dir, json.loads(summary_path.read_text()) if summary_path.exists() else {}


def eval_step(
    evaluation: EvalConfig, model: str, out_dir: Path, cache: Path | None, model_key: str = ""
) -> dict[str, Any]:
    """Evaluate `model` with the recipe's eval settings (or load the results when done with the same config)."""
    from limo.eval.run import run_eval

    cfg = dataclasses.replace(evaluation, model=model)
    if cache is not None and cfg.cache is None:
        cfg = dataclasses.replace(cfg, cache=str(cache))
    key = config_hash({"eval": dataclasses.asdict(cfg), "model": model_key or model})
    if done_key(out_dir) == key:
        return json.loads((out_dir / "results.json").read_text())
    clear_done(out_dir)
    results = run_eval(cfg, out_dir)
    mark_done(out_dir, key)
    return results


def run_pipeline(
    recipe: Recipe, run_dir: str | Path, cache: str | Path | None = None, skip_base_eval: bool = False
) -> dict:
    """The whole LIMO loop on one recipe. Returns the run summary (also written to RUN/run_summary.json)."""
    from limo.curate import run_curate
    from limo.engines.base import local_fingerprint

    start = time.perf_counter()
    recipe.need("curate", "train", "eval", command="run")
    run_dir = Path(run_dir)
    cache_path = Path(cache) if cache else None
    timings: dict[str, float] = {}

    t = time.perf_counter()
    run_curate(recipe.curate, run_dir, cache_path)
    messages = export_messages(run_dir, recipe.curate)
    timings["curate"] = time.perf_counter() - t

    t = time.perf_counter()
    model_dir, train_summary = train_step(recipe.train, messages, run_dir / "train")
    timings["train"] = time.perf_counter() - t

    base_model = recipe.train.model
    results: dict[str, dict] = {}
    t = time.perf_counter()
    if not skip_base_eval:
        results["base"] = eval_step(recipe.eval, base_model, run_dir / "eval" / "base", cache_path)
    results["tuned"] = eval_step(
        recipe.eval, str(model_dir), run_dir / "eval" / "tuned", cache_path, local_fingerprint(str(model_dir))
    )
    timings["eval"] = time.perf_counter() - t

    from limo.report.run_report import write_run_report

    summary = write_run_report(run_dir, recipe.name, base_model, train_summary, timings)
    summary["wall_seconds"] = round(time.perf_counter() - start, 1)
    write_json(run_dir / "run_summary.json", summary)
    return summary
