"""`limo run RECIPE.yaml --out RUN`: curate -> train -> eval (base and fine-tuned) -> report, each step resumable.

    RUN/01_pool ... RUN/10_export, RUN/export/   curation (limo curate; resumable stage by stage)
    RUN/train/                                   the fine-tuned model (limo train; resumes from its checkpoints)
    RUN/eval/base/, RUN/eval/tuned/              limo eval of the base and the fine-tuned model, same benchmarks
    RUN/report/                                  compare.json/.md/.png (paired test) and loss.png
    RUN/report.md, RUN/run_summary.json          the before/after table, the curation and training summaries

The recipe holds the curation keys (see limo.curate) plus `train:` (limo.train.sft.TrainConfig; `data` is filled in
with RUN/export/messages.jsonl) and `eval:` (limo.eval.run.EvalConfig; `model` is filled in: the train model,
then RUN/train). Train and eval steps write a `done` marker holding the hash of their config and inputs, so a
rerun skips finished steps and redoes changed ones; generations come from the persistent cache either way.

    limo run recipes/demo.yaml --out runs/demo
"""

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from limo.errors import LimoError
from limo.io import atomic_write_text, write_json
from limo.recipes import apply_overrides, config_hash, load_yaml


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.exists() else ""


def _done(step_dir: Path, key: str) -> bool:
    marker = step_dir / "done"
    return marker.exists() and marker.read_text().strip() == key


def _mark_done(step_dir: Path, key: str) -> None:
    atomic_write_text(step_dir / "done", key + "\n")


def export_messages(run_dir: Path, recipe: Any) -> Path:
    path = run_dir / recipe.export.out_dir / "messages.jsonl"
    if not path.exists():
        raise LimoError(f"{path}: curation produced no messages export (is 'messages' in export.formats?)")
    if not path.read_text(encoding="utf-8").strip():
        raise LimoError(f"{path}: the curated dataset is empty; nothing to train on (see {run_dir}/datacard.md)")
    return path


def train_step(train_data: dict[str, Any], messages: Path, out_dir: Path) -> tuple[Path, dict]:
    """Train (or skip when done with the same config and data). Returns the model dir and its summary."""
    from limo.train.sft import build_train_config, run_train

    cfg = build_train_config({"train": {**train_data, "data": str(messages)}})
    key = config_hash({"train": dataclasses.asdict(cfg), "data": _digest(messages)})
    if not _done(out_dir, key):
        run_train(cfg, out_dir)
        _mark_done(out_dir, key)
    summary_path = out_dir / "train_summary.json"
    return out_dir, json.loads(summary_path.read_text()) if summary_path.exists() else {}


def eval_step(eval_data: dict[str, Any], model: str, out_dir: Path, cache: Path | None, model_key: str = "") -> dict:
    """Evaluate `model` (or load the results when done with the same config and model)."""
    from limo.eval.run import EvalConfig, run_eval

    data = {**eval_data, "model": model}
    if cache is not None:
        data.setdefault("cache", str(cache))
    cfg = EvalConfig.from_dict(data)
    key = config_hash({"eval": dataclasses.asdict(cfg), "model": model_key or model})
    if _done(out_dir, key):
        return json.loads((out_dir / "results.json").read_text())
    results = run_eval(cfg, out_dir)
    _mark_done(out_dir, key)
    return results


def run_pipeline(
    recipe_path: str | Path,
    run_dir: str | Path,
    overrides: list[str] | None = None,
    cache: str | Path | None = None,
    skip_base_eval: bool = False,
) -> dict:
    """The whole LIMO loop on one recipe. Returns the run summary (also written to RUN/run_summary.json)."""
    from limo.curate import build_curate_recipe, run_curate
    from limo.engines.base import local_fingerprint

    start = time.perf_counter()
    data = apply_overrides(load_yaml(recipe_path), list(overrides or []))
    for key in ("train", "eval"):
        if not isinstance(data.get(key), dict):
            raise LimoError(
                f"{recipe_path}: `limo run` needs a '{key}:' section (use `limo curate` for curation only)"
            )
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cache_path = Path(cache) if cache else None
    timings: dict[str, float] = {}

    t = time.perf_counter()
    recipe = build_curate_recipe(data)
    run_curate(recipe, run_dir, cache_path)
    messages = export_messages(run_dir, recipe)
    timings["curate"] = time.perf_counter() - t

    t = time.perf_counter()
    model_dir, train_summary = train_step(data["train"], messages, run_dir / "train")
    timings["train"] = time.perf_counter() - t

    base_model = data["train"].get("model", "smollm2-135m")
    results: dict[str, dict] = {}
    t = time.perf_counter()
    if not skip_base_eval:
        results["base"] = eval_step(data["eval"], base_model, run_dir / "eval" / "base", cache_path)
    results["tuned"] = eval_step(
        data["eval"], str(model_dir), run_dir / "eval" / "tuned", cache_path, local_fingerprint(str(model_dir))
    )
    timings["eval"] = time.perf_counter() - t

    from limo.report.run_report import write_run_report

    summary = write_run_report(run_dir, data.get("name") or Path(recipe_path).stem, base_model, train_summary, timings)
    summary["wall_seconds"] = round(time.perf_counter() - start, 1)
    write_json(run_dir / "run_summary.json", summary)
    return summary
