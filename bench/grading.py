"""Benchmark: items/s of limo's grade_many (pebble pool, 2 worker processes, hard 5 s timeouts) against the
hand-written socketpair pool it replaced (loaded from git history) and against math-verify called directly in one
process (its own 5 s signal timeouts), all in the same run, on the 500 MATH500 gold answers paired with the real
responses of traces/sky_t1_math_correct_5k_27b_math500.jsonl.

    .venv/bin/python bench/grading.py            # prints a table, writes bench/results/grading.json

"cold" includes starting the worker processes; "warm" reuses the started pool.
"""

import json
import logging
import os
import platform
import time
from pathlib import Path

from limo.paths import data_dir

TRACES = "sky_t1_math_correct_5k_27b_math500.jsonl"


def load_items() -> list[tuple[str, str]]:
    golds = {}
    for line in (data_dir() / "benchmarks" / "math500.jsonl").open():
        row = json.loads(line)
        golds[row["id"]] = row["answer"]
    items = []
    for line in (data_dir() / "traces" / TRACES).open():
        row = json.loads(line)
        items.append((row["trace"], golds[row["benchmark_id"]]))
    assert len(items) == 500, len(items)
    return items


def baseline(items: list[tuple[str, str]]) -> tuple[float, int]:
    """math-verify directly: parse the gold and the whole response, verify; one process, default timeouts."""
    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    start = time.perf_counter()
    correct = 0
    for response, gold in items:
        try:
            correct += bool(verify(parse(f"${gold}$"), parse(response)))
        except Exception:
            pass
    return time.perf_counter() - start, correct


OLD_POOL_COMMIT = "fba6251"  # the last commit with the hand-written socketpair pool (src/limo/grading.py)


def old_pool_module():
    """The replaced hand-written pool, loaded from git history into a temporary module (bench only)."""
    import importlib
    import subprocess
    import sys
    import tempfile

    code = subprocess.run(
        ["git", "show", f"{OLD_POOL_COMMIT}:src/limo/grading.py"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent,
    ).stdout.replace("from limo.grading import _worker_entry", "from limo_old_grading import _worker_entry")
    folder = tempfile.mkdtemp(prefix="limo-old-grading-")
    (Path(folder) / "limo_old_grading.py").write_text(code)
    os.environ["PYTHONPATH"] = folder + os.pathsep + os.environ.get("PYTHONPATH", "")
    sys.path.insert(0, folder)
    return importlib.import_module("limo_old_grading")


def timed(grade_many, close, items) -> tuple[float, float, list]:
    close()
    start = time.perf_counter()
    grade_many(items, timeout_s=5.0, workers=2)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    results = grade_many(items, timeout_s=5.0, workers=2)
    warm = time.perf_counter() - start
    close()
    return cold, warm, results


def main() -> None:
    from limo.grading import grade_many, summarize
    from limo.grading.pool import close_pool

    items = load_items()
    old = old_pool_module()
    old_cold, old_warm, old_results = timed(old.grade_many, old._close_pool, items)
    new_cold, new_warm, new_results = timed(grade_many, close_pool, items)
    base_s, base_correct = baseline(items)
    n = len(items)
    old_correct, new_correct = sum(r.correct for r in old_results), sum(r.correct for r in new_results)
    rows = {
        "math-verify direct (1 process)": (base_s, base_correct),
        "old hand-written pool, 2 workers (cold)": (old_cold, old_correct),
        "old hand-written pool, 2 workers (warm)": (old_warm, old_correct),
        "pebble pool, 2 workers (cold)": (new_cold, new_correct),
        "pebble pool, 2 workers (warm)": (new_warm, new_correct),
    }
    print(f"{'method':42} {'seconds':>8} {'items/s':>9} {'correct':>8}")
    for name, (secs, corr) in rows.items():
        print(f"{name:42} {secs:8.2f} {n / secs:9.1f} {corr:8d}")
    print(f"pebble vs old pool: cold {old_cold / new_cold:.2f}x, warm {old_warm / new_warm:.2f}x (>1 = pebble faster)")
    out = {
        "items": n,
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs (2-core CPU dev box shared with other jobs, no GPU)",
        "baseline_seconds": base_s,
        "baseline_items_per_s": n / base_s,
        "baseline_correct": base_correct,
        "old_pool_commit": OLD_POOL_COMMIT,
        "old_cold_seconds": old_cold,
        "old_warm_seconds": old_warm,
        "old_correct": old_correct,
        "ours_cold_seconds": new_cold,
        "ours_warm_seconds": new_warm,
        "ours_cold_items_per_s": n / new_cold,
        "ours_warm_items_per_s": n / new_warm,
        "ours_correct": new_correct,
        "ours_verdicts": summarize(new_results),
        "pebble_vs_old_cold": old_cold / new_cold,
        "pebble_vs_old_warm": old_warm / new_warm,
        "speedup_cold": base_s / new_cold,
        "speedup_warm": base_s / new_warm,
        "timeout_s": 5.0,
        "workers": 2,
    }
    path = Path(__file__).parent / "results" / "grading.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
