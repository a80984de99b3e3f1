"""Benchmark: items/s of limo's grade_many (2 worker processes, hard 5 s timeouts) against math-verify called
directly in one process (its own 5 s signal timeouts), in the same run, on the 500 MATH500 gold answers paired with
the real responses of traces/sky_t1_math_correct_5k_27b_math500.jsonl.

    .venv/bin/python bench/grading.py            # prints a table, writes bench/results/grading.json

"ours (cold)" includes starting the worker processes; "ours (warm)" reuses the started pool.
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


def ours(items: list[tuple[str, str]]) -> tuple[float, float, int, dict]:
    from limo.grading import _close_pool, grade_many, summarize

    _close_pool()
    start = time.perf_counter()
    results = grade_many(items, timeout_s=5.0, workers=2)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    results = grade_many(items, timeout_s=5.0, workers=2)
    warm = time.perf_counter() - start
    return cold, warm, sum(r.correct for r in results), summarize(results)


def main() -> None:
    items = load_items()
    cold, warm, ours_correct, counts = ours(items)
    base_s, base_correct = baseline(items)
    n = len(items)
    rows = {
        "math-verify direct (1 process)": (base_s, base_correct),
        "limo grade_many, 2 workers (cold)": (cold, ours_correct),
        "limo grade_many, 2 workers (warm)": (warm, ours_correct),
    }
    print(f"{'method':38} {'seconds':>8} {'items/s':>9} {'correct':>8}")
    for name, (secs, corr) in rows.items():
        print(f"{name:38} {secs:8.2f} {n / secs:9.1f} {corr:8d}")
    speedup_cold, speedup_warm = base_s / cold, base_s / warm
    print(f"speedup vs math-verify: cold {speedup_cold:.1f}x, warm {speedup_warm:.1f}x (acceptance: >= 1.5x)")
    out = {
        "items": n,
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs (2-core CPU dev box, no GPU)",
        "baseline_seconds": base_s,
        "baseline_items_per_s": n / base_s,
        "baseline_correct": base_correct,
        "ours_cold_seconds": cold,
        "ours_warm_seconds": warm,
        "ours_cold_items_per_s": n / cold,
        "ours_warm_items_per_s": n / warm,
        "ours_correct": ours_correct,
        "ours_verdicts": counts,
        "speedup_cold": speedup_cold,
        "speedup_warm": speedup_warm,
        "timeout_s": 5.0,
        "workers": 2,
    }
    path = Path(__file__).parent / "results" / "grading.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
