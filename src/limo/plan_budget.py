"""The cost side of `--plan`: model sizes, the tokens/s table, per-model bounds and GPU-hour ranges, the printout.

GPU hours = upper bound on output tokens / (output tokens per second per GPU) / 3600, as a [low, high] range from
the [high, low] throughput of the model's size class (THROUGHPUT; `--throughput FILE.yaml` replaces classes).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from limo.errors import LimoError
from limo.io import read_text

# Output tokens per second PER GPU for batched generation, by model size (billions of parameters): [low, high].
# Our assumption for vLLM-style batched decoding of long outputs on one 80 GB-class GPU, NOT measured on this
# project's machines (it has no GPU); the range is wide on purpose. Override: --throughput FILE.yaml with the same
# keys. docs/FIDELITY.md shows this table.
THROUGHPUT: dict[str, list[float]] = {
    "<=2B": [4000.0, 16000.0],
    "<=8B": [1500.0, 6000.0],
    "<=16B": [800.0, 3000.0],
    "<=40B": [300.0, 1200.0],
    "<=80B": [120.0, 500.0],
    ">80B": [50.0, 300.0],
}
SIZE_CLASSES: list[tuple[float, str]] = [(2, "<=2B"), (8, "<=8B"), (16, "<=16B"), (40, "<=40B"), (80, "<=80B")]
# models whose name carries no size, in billions of parameters (DeepSeek-R1: "671B parameters in size, with 37B
# active in an inference pass", openrouter.ai/deepseek/deepseek-r1; a GPU-hour range for it is the roughest here)
KNOWN_SIZES_B: dict[str, float] = {"deepseek-r1": 671.0, "deepseek-reasoner": 671.0}
_SIZE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*([bm])(?![a-z])", re.I)


def model_size_b(model: str) -> float | None:
    """Billions of parameters read from a model name (`Qwen2.5-Math-7B-Instruct` -> 7, `smollm2-135m` -> 0.135)."""
    name = model.rstrip("/").split("/")[-1].lower()
    if name in KNOWN_SIZES_B:
        return KNOWN_SIZES_B[name]
    sizes = [
        float(m.group(1)) * (1.0 if m.group(2).lower() == "b" else 1e-3)
        for m in _SIZE.finditer(name.replace("_", "-"))
    ]
    return max(sizes) if sizes else None


def size_class(size_b: float | None) -> str | None:
    if size_b is None:
        return None
    return next((label for limit, label in SIZE_CLASSES if size_b <= limit), ">80B")


def load_throughput(path: str | Path | None) -> dict[str, list[float]]:
    """The default table, with the classes given in a YAML file replaced (`"<=40B": [300, 1200]`)."""
    table = {k: list(v) for k, v in THROUGHPUT.items()}
    if path is None:
        return table
    path = Path(path)
    if not path.exists():
        raise LimoError(f"--throughput {path}: file not found")
    try:
        data = yaml.safe_load(read_text(path, what="throughput table")) or {}
    except yaml.YAMLError as e:
        raise LimoError(f"--throughput {path}: invalid YAML ({type(e).__name__}); fix the file") from None
    if not isinstance(data, dict):
        raise LimoError(f"--throughput {path}: expected a mapping of size class -> [low, high] tokens/s")
    for key, value in data.items():
        if key not in table:
            raise LimoError(f"--throughput {path}: unknown size class {key!r}; known: {list(table)}")
        ok = isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value)
        if not ok or not 0 < value[0] <= value[1]:
            raise LimoError(f"--throughput {path}: {key}: expected [low, high] tokens/s with 0 < low <= high")
        table[key] = [float(v) for v in value]
    return table


def budget(entries: list[dict], throughput: dict[str, list[float]]) -> dict[str, Any]:
    """Per model: generation and output-token bounds summed over stages, and a GPU-hour range."""
    per_model: dict[str, dict[str, Any]] = {}
    for e in entries:
        m = per_model.setdefault(
            e["model"], {"model": e["model"], "stages": [], "max_generations": 0, "max_output_tokens": 0}
        )
        m["stages"].append(f"{e['stage']}:{e['role']}")
        for key in ("max_generations", "max_output_tokens"):
            m[key] = None if m[key] is None or e[key] is None else m[key] + e[key]
    total_gen: int | None = 0
    total_tok: int | None = 0
    hours = [0.0, 0.0]
    hours_known = True
    for m in per_model.values():
        size = model_size_b(m["model"])
        label = size_class(size)
        rate = throughput.get(label) if label else None
        m.update(size_b=size, size_class=label, tokens_per_s_per_gpu=rate)
        if rate is None or m["max_output_tokens"] is None:
            m["gpu_hours"] = None
            hours_known = False
        else:
            m["gpu_hours"] = [
                round(m["max_output_tokens"] / rate[1] / 3600, 2),
                round(m["max_output_tokens"] / rate[0] / 3600, 2),
            ]
            hours = [hours[0] + m["gpu_hours"][0], hours[1] + m["gpu_hours"][1]]
        total_gen = None if total_gen is None or m["max_generations"] is None else total_gen + m["max_generations"]
        total_tok = None if total_tok is None or m["max_output_tokens"] is None else total_tok + m["max_output_tokens"]
    return {
        "per_model": list(per_model.values()),
        "total": {
            "max_generations": total_gen,
            "max_output_tokens": total_tok,
            "gpu_hours": [round(hours[0], 2), round(hours[1], 2)] if hours_known else None,
        },
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, list):
        return f"{value[0]:g}-{value[1]:g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def print_plan(plan: dict[str, Any], path: Path | None = None) -> None:
    """One screen: every model with its stage, samples, thresholds and bounds; then the per-model budget."""
    from rich.table import Table

    from limo.console import console

    table = Table(title=f"limo {plan['command']} --plan: {plan['recipe']['name']}")
    for col in ("stage", "model", "engine", "samples", "threshold", "max tokens", "max generations"):
        table.add_column(
            col, justify="right" if col in ("samples", "max tokens", "max generations") else "left", overflow="fold"
        )
    for e in plan["generations"]:
        threshold = ""
        if "band" in e:
            threshold = f"keep solved {e['band']['min_solved']}-{e['band']['max_solved']} of {e['band']['of']}"
        elif "threshold" in e:
            threshold = f"drop solved >= {e['threshold']['drop_if_solved_at_least']} of {e['threshold']['of']}"
        table.add_row(
            f"{e['stage']}:{e['role']}",
            e["model"].split("/")[-1] if "/" in e["model"] and not e["model"].startswith(("/", ".")) else e["model"],
            e["engine"],
            str(e["samples_per_problem"]),
            threshold,
            _fmt(e["max_tokens"]),
            _fmt(e["max_generations"]),
        )
    console.print(table)
    for s in plan["stages"]:
        if s["stage"] == "score":
            console.print(f"score: profile {s['profile']}, levels {s['levels']}")
        if s["stage"] == "select":
            console.print(f"select: {s['target_size']} examples")
    cost = Table(title="upper bounds per model (GPU hours at the stated tokens/s per GPU)")
    for col in ("model", "size class", "tokens/s per GPU", "max generations", "max output tokens", "GPU hours"):
        cost.add_column(col, justify="left" if col in ("model", "size class") else "right", overflow="fold")
    for m in plan["budget"]["per_model"]:
        cost.add_row(
            m["model"],
            _fmt(m["size_class"]),
            _fmt(m["tokens_per_s_per_gpu"]),
            _fmt(m["max_generations"]),
            _fmt(m["max_output_tokens"]),
            _fmt(m["gpu_hours"]),
        )
    total = plan["budget"]["total"]
    cost.add_row(
        "total", "", "", _fmt(total["max_generations"]), _fmt(total["max_output_tokens"]), _fmt(total["gpu_hours"])
    )
    console.print(cost)
    if path is not None:
        console.print(f"plan written to {path} (nothing was generated)")
