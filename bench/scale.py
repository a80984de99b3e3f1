"""Curation at pool scale: pool -> dedup -> decontaminate -> diversity on synthetic pools, today's path beside the
streaming path, wall time and peak RSS of each, in one run.

    .venv/bin/python bench/scale.py [--sizes 200000 1000000 2000000] [--work /tmp/limo-scale]

Pools: limo.streaming.synthetic.write_pool (MATH train problems recombined, numbers re-drawn, 10% perturbed copies;
~1 KB per row with solutions). Each path runs in its own subprocess; its peak RSS is that process's ru_maxrss
(os.wait4). "today" is the code of commit OLD_COMMIT (every stage turns its table into Python dicts; `git archive`
into the work dir); "streaming" is this checkout (Arrow record batches, Parquet shards, local executor, default
shard size). At 200k rows the streaming path also runs in one batch (shard_rows = batch_rows = 10^9, the in-memory
path of this code) and the kept ids and drop reasons of every stage are compared. Today's path is skipped, with
the reason recorded, when its expected peak RSS (per-row RSS measured at the smaller size, times the rows) does not
fit in the memory available on the shared box. Writes bench/results/scale.json.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
OLD_COMMIT = "fba6251"  # before streaming: pool/dedup/decontaminate/diversity hold the pool as Python dicts
STAGES = ("pool", "dedup", "decontaminate", "diversity")

# run in a subprocess: argv = pool.jsonl run_dir shard_rows batch_rows
_STREAMING = """
import sys
from pathlib import Path
from datasets import Dataset
from limo.curate import build_curate_recipe, curate_stages
from limo.runs import Run, StageContext, run_stages
from limo.streaming.executors import make_executor
pool, run_dir, shard_rows, batch_rows = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
recipe = build_curate_recipe({
    "seed": 0, "executor": {"kind": "local", "shard_rows": shard_rows, "batch_rows": batch_rows},
    "pool": {"sources": [{"name": "syn", "path": str(pool)}]}, "diversity": {"target_size": 817}})
by_name = {s.name: s for s in curate_stages(recipe)}
stages = [by_name[n] for n in ("pool", "dedup", "decontaminate", "diversity")]
executor = make_executor(recipe.executor)
ctx = lambda d: StageContext(run_dir=run_dir, stage_dir=d, generation_cache=run_dir / "g.sqlite", executor=executor)
run_stages(Run(run_dir), stages, Dataset.from_dict({}), ctx)
"""

_TODAY = """
import sys
from pathlib import Path
from datasets import Dataset
from limo.curate import build_curate_recipe, curate_stages
from limo.runs import Run, StageContext, run_stages
pool, run_dir = Path(sys.argv[1]), Path(sys.argv[2])
recipe = build_curate_recipe({"seed": 0, "pool": {"sources": [{"name": "syn", "path": str(pool)}]},
                              "diversity": {"target_size": 817}})
by_name = {s.name: s for s in curate_stages(recipe)}
stages = [by_name[n] for n in ("pool", "dedup", "decontaminate", "diversity")]
ctx = lambda d: StageContext(run_dir=run_dir, stage_dir=d, generation_cache=run_dir / "g.sqlite")
run_stages(Run(run_dir), stages, Dataset.from_dict({}), ctx)
"""


def measure(script: str, args: list[str], pythonpath: Path) -> dict:
    """Wall seconds and peak RSS (GB) of one subprocess; per-stage seconds from its stats.json files."""
    from limo.paths import data_dir

    env = {**os.environ, "PYTHONPATH": str(pythonpath), "OMP_NUM_THREADS": "1", "LIMO_DATA": str(data_dir())}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", script, *args], env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    run_dir = Path(args[1])
    stages = {}
    for i, name in enumerate(STAGES, start=1):
        stats = run_dir / f"{i:02d}_{name}" / "stats.json"
        if stats.exists():
            s = json.loads(stats.read_text())
            stages[name] = {"seconds": s.get("seconds"), "rows_out": s.get("rows_out"), "dropped": s.get("dropped")}
    return {
        "ok": os.waitstatus_to_exitcode(status) == 0,
        "wall_s": round(wall, 1),
        "peak_rss_gb": round(usage.ru_maxrss / 1024**2, 3),
        "stages": stages,
    }


def outputs(run_dir: Path) -> dict:
    import pyarrow.parquet as pq

    out = {}
    for i, name in enumerate(STAGES, start=1):
        d = run_dir / f"{i:02d}_{name}"
        kept = pq.read_table(d / "data.parquet", columns=["id"]).column("id").to_pylist()
        dropped = pq.read_table(d / "dropped.parquet")
        pairs = []
        if dropped.num_rows:
            pairs = sorted(
                zip(dropped.column("id").to_pylist(), dropped.column("drop_reason").to_pylist(), strict=True)
            )
        out[name] = (kept, pairs)
    return out


def available_gb() -> float:
    for line in open("/proc/meminfo"):
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024**2
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000, 2_000_000])
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "limo-scale")
    ap.add_argument("--today-max-rows", type=int, default=None, help="run today's path only up to this size")
    ap.add_argument("--append", action="store_true", help="keep the sizes already in bench/results/scale.json")
    args = ap.parse_args()
    from limo.streaming.synthetic import write_pool

    args.work.mkdir(parents=True, exist_ok=True)
    old_src = args.work / f"old-{OLD_COMMIT}"
    if not old_src.exists():
        archive = subprocess.run(["git", "archive", OLD_COMMIT, "src"], cwd=ROOT, capture_output=True, check=True)
        old_src.mkdir()
        subprocess.run(["tar", "-x", "-C", str(old_src)], input=archive.stdout, check=True)
    rows = []
    today_gb_per_row = None
    out = ROOT / "bench" / "results" / "scale.json"
    if args.append and out.exists():
        rows = [r for r in json.loads(out.read_text())["sizes"] if r["rows"] not in args.sizes]
        measured = [r for r in rows if r["today"].get("ok")]
        if measured:
            today_gb_per_row = measured[-1]["today"]["peak_rss_gb"] / measured[-1]["rows"]
    for n in sorted(args.sizes):
        pool = args.work / f"pool-{n}.jsonl"
        t0 = time.perf_counter()
        if not pool.exists():
            write_pool(pool, n, seed=0)
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        entry = {
            "rows": n,
            "commit": commit.stdout.strip(),
            "pool_mb": round(pool.stat().st_size / 1e6),
            "build_s": round(time.perf_counter() - t0),
        }
        print(f"== {n} rows ({entry['pool_mb']} MB JSONL)", flush=True)
        run_dir = args.work / f"stream-{n}"
        subprocess.run(["rm", "-rf", str(run_dir)], check=True)
        entry["streaming"] = measure(_STREAMING, [str(pool), str(run_dir), "65536", "8192"], ROOT / "src")
        print("streaming", entry["streaming"], flush=True)
        if n <= 200_000:
            one = args.work / f"onebatch-{n}"
            subprocess.run(["rm", "-rf", str(one)], check=True)
            entry["one_batch"] = measure(_STREAMING, [str(pool), str(one), str(10**9), str(10**9)], ROOT / "src")
            entry["streaming_equals_one_batch"] = outputs(run_dir) == outputs(one)
            print("one batch", entry["one_batch"], "equal:", entry["streaming_equals_one_batch"], flush=True)
            subprocess.run(["rm", "-rf", str(one)], check=True)
        expected = None if today_gb_per_row is None else today_gb_per_row * n
        free = available_gb()
        if args.today_max_rows is not None and n > args.today_max_rows:
            expect = "" if expected is None else f" (expected peak RSS from the smaller size: {expected:.1f} GB)"
            entry["today"] = {"skipped": f"not run: the session's time budget (--today-max-rows){expect}"}
        elif expected is not None and expected > free - 2:
            entry["today"] = {
                "skipped": f"expected peak RSS {expected:.1f} GB ({today_gb_per_row * 1e6:.1f} GB per 1M rows "
                f"measured at the smaller size) does not fit in the {free:.1f} GB available on this shared 24 GB box"
            }
        else:
            today_dir = args.work / f"today-{n}"
            subprocess.run(["rm", "-rf", str(today_dir)], check=True)
            entry["today"] = measure(_TODAY, [str(pool), str(today_dir)], old_src / "src")
            if entry["today"]["ok"]:
                today_gb_per_row = entry["today"]["peak_rss_gb"] / n
            subprocess.run(["rm", "-rf", str(today_dir)], check=True)
        print("today", entry["today"], flush=True)
        subprocess.run(["rm", "-rf", str(run_dir)], check=True)
        rows.append(entry)
        rows.sort(key=lambda r: r["rows"])
        write_results(rows)  # after every size, so a long run leaves its finished sizes


def write_results(rows: list[dict]) -> None:
    base = rows[0]
    for r in rows:
        r["streaming_time_vs_linear"] = round(
            r["streaming"]["wall_s"] / (base["streaming"]["wall_s"] * r["rows"] / base["rows"]), 3
        )
    result = {
        "machine": f"2-core x86_64 CPU box ({platform.processor() or 'x86_64'}), 24 GB RAM, shared with ~8 other jobs",
        "old_commit": OLD_COMMIT,
        "stages": list(STAGES),
        "sizes": rows,
    }
    out = ROOT / "bench" / "results" / "scale.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}", flush=True)


if __name__ == "__main__":
    main()
