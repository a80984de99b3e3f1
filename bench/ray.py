"""Throughput of the `ray` engine: 2 replicas against 1, and against the plain single-process hf engine.

Same prompts (the first N MATH500 problems as LIMO chat prompts), greedy decoding, the embedded model, a fresh
generation cache for every measurement, same chunk size everywhere. Throughput = completion tokens / wall seconds
of `engine.generate` (replica start-up and model loading are timed separately). Configurations:

- hf in-process, torch default threads (the baseline), and with 1 torch thread;
- ray, 1 replica x 1 thread; ray, 2 replicas x 1 thread each (the comparison the issue asks for);
- ray, 1 replica x 2 threads (one replica owning both cores).

Configurations are interleaved over `--repeats` rounds and the median is reported, because the machine is shared.

    .venv/bin/python bench/ray.py [--prompts 16] [--max-tokens 64] [--batch-size 4] [--repeats 2]

Writes bench/results/ray.json and prints a table.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

# this file is named ray.py: keep its folder off sys.path so `import ray` finds the real package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import ray  # noqa: E402
import torch  # noqa: E402

from limo.console import console  # noqa: E402
from limo.engines.base import EngineConfig, SamplingParams  # noqa: E402
from limo.engines.cache import CachedEngine, GenerationCache  # noqa: E402
from limo.engines.hf import HFBackend  # noqa: E402
from limo.engines.ray import RayBackend  # noqa: E402
from limo.io import iter_jsonl  # noqa: E402
from limo.paths import data_dir  # noqa: E402
from limo.records import chat_messages  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "ray.json"
MODEL = "smollm2-135m"

# name, kind, replicas, cpus per replica, torch threads per replica (None = torch default)
CONFIGS = [
    ("hf in-process, default threads", "hf", 1, None, None),
    ("hf in-process, 1 thread", "hf", 1, None, 1),
    ("ray 1 replica x 1 thread", "ray", 1, 1, 1),
    ("ray 2 replicas x 1 thread", "ray", 2, 1, 1),
    ("ray 1 replica x 2 threads", "ray", 1, 2, 2),
]


def load_prompts(n: int) -> list:
    rows = [row for _, row in iter_jsonl(data_dir() / "benchmarks" / "math500.jsonl")][:n]
    return [chat_messages(row["problem"]) for row in rows]


def measure(engine: CachedEngine, prompts: list, sampling: SamplingParams) -> dict:
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    outs = engine.generate(prompts, sampling)
    wall = time.perf_counter() - t0
    tokens = sum(row[0].completion_tokens for row in outs)
    return {
        "wall_s": wall,
        "completion_tokens": tokens,
        "tok_s": tokens / wall,
        "texts": [row[0].text for row in outs],
        "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def run_config(config, prompts, sampling, batch_size, hf_backend, workdir: Path, tag: str) -> dict:
    name, kind, replicas, cpus, threads = config
    cache = GenerationCache(workdir / f"{tag}.sqlite")  # fresh: nothing cached
    if kind == "hf":
        default_threads = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        engine = CachedEngine(EngineConfig(model=MODEL, engine="hf", batch_size=batch_size), cache)
        engine._backend = hf_backend
        try:
            result = measure(engine, prompts, sampling)
        finally:
            torch.set_num_threads(default_threads)
        result["threads"] = threads or default_threads
        result["startup_s"] = None
        return result
    cfg = EngineConfig(
        model=MODEL, engine="ray", batch_size=batch_size, replicas=replicas, inner={"engine": "hf"},
        ray_cpus_per_replica=cpus,
    )  # fmt: skip
    t0 = time.perf_counter()
    backend = RayBackend(cfg, torch_threads=threads)
    startup = time.perf_counter() - t0
    engine = CachedEngine(cfg, cache)
    engine._backend = backend
    try:
        result = measure(engine, prompts, sampling)
    finally:
        engine.close()
    result.update(threads=threads, startup_s=startup, chunks_per_replica=backend.chunks_done)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=4, help="chunk size: requests per replica call / hf batch")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    prompts = load_prompts(args.prompts)
    sampling = SamplingParams(max_tokens=args.max_tokens)
    default_threads = torch.get_num_threads()
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    hf_backend = HFBackend(EngineConfig(model=MODEL, engine="hf", batch_size=args.batch_size))
    runs: dict[str, list[dict]] = {c[0]: [] for c in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for i, config in enumerate(CONFIGS):
                console.print(f"round {rep + 1}/{args.repeats}: {config[0]} ...")
                res = run_config(config, prompts, sampling, args.batch_size, hf_backend, Path(tmp), f"r{rep}c{i}")
                tokens, wall, speed = res["completion_tokens"], res["wall_s"], res["tok_s"]
                console.print(f"  {tokens} tokens in {wall:.1f}s = {speed:.1f} tok/s")
                runs[config[0]].append(res)
    ray.shutdown()

    reference = runs[CONFIGS[0][0]][0]["texts"]
    rows = []
    for name, kind, replicas, cpus, _ in CONFIGS:
        rs = runs[name]
        rows.append(
            {
                "config": name,
                "engine": kind,
                "replicas": replicas,
                "cpus_per_replica": cpus,
                "torch_threads_per_replica": rs[0]["threads"],
                "completion_tokens": rs[0]["completion_tokens"],
                "wall_s": [round(r["wall_s"], 2) for r in rs],
                "tok_s_median": round(statistics.median(r["tok_s"] for r in rs), 2),
                "tok_s_runs": [round(r["tok_s"], 2) for r in rs],
                "startup_s": [round(r["startup_s"], 2) for r in rs] if rs[0]["startup_s"] is not None else None,
                "chunks_per_replica": rs[-1].get("chunks_per_replica"),
                "outputs_match_baseline": all(r["texts"] == reference for r in rs),
                "loadavg_1m_before_after": [r["loadavg_1m"] for r in rs],
            }
        )
    by_name = {r["config"]: r for r in rows}
    one = by_name["ray 1 replica x 1 thread"]["tok_s_median"]
    base = by_name["hf in-process, default threads"]["tok_s_median"]
    for r in rows:
        r["speedup_vs_ray_1x1"] = round(r["tok_s_median"] / one, 2)
        r["speedup_vs_hf_default"] = round(r["tok_s_median"] / base, 2)

    result = {
        "bench": "ray",
        "machine": f"2-core CPU dev box, no GPU ({platform.machine()}, {os.cpu_count()} CPUs, shared with other jobs)",
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "ray": ray.__version__,
        "torch_default_threads": default_threads,
        "model": MODEL,
        "prompts": f"first {args.prompts} MATH500 problems, LIMO system prompt",
        "max_tokens": args.max_tokens,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "greedy": True,
        "scaling_2_vs_1_replicas": round(by_name["ray 2 replicas x 1 thread"]["tok_s_median"] / one, 2),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    from rich.table import Table

    table = Table(title=f"ray engine: {args.prompts} MATH500 prompts x {args.max_tokens} tokens, greedy")
    columns = ("config", "threads", "tok/s (median)", "runs", "vs ray 1x1", "vs hf default", "start-up s", "same text")
    for col in columns:
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["config"],
            str(r["torch_threads_per_replica"]),
            f"{r['tok_s_median']:.1f}",
            ", ".join(f"{x:.1f}" for x in r["tok_s_runs"]),
            f"{r['speedup_vs_ray_1x1']:.2f}x",
            f"{r['speedup_vs_hf_default']:.2f}x",
            ", ".join(f"{x:.1f}" for x in r["startup_s"]) if r["startup_s"] else "-",
            "yes" if r["outputs_match_baseline"] else "NO",
        )
    console.print(table)
    console.print(f"2 replicas vs 1: {result['scaling_2_vs_1_replicas']}x  ->  {args.out}")


if __name__ == "__main__":
    main()
