"""Benchmark: items/s of limo's grade_many (our socketpair pool, 2 worker processes, hard 5 s timeouts) against a
pebble ProcessPool doing the same (the replacement issue 15 proposed; measured, not adopted) and against math-verify
called directly in one process (its own 5 s signal timeouts), all in the same run, on the 500 MATH500 gold answers
paired with the real responses of traces/sky_t1_math_correct_5k_27b_math500.jsonl.

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


def pebble_grade_many(items, timeout_s: float = 5.0, workers: int = 2) -> list:
    """The pebble alternative that was measured and not adopted (see limo/grading/pool.py): one pebble task per item
    with `timeout=timeout_s`, workers from a forkserver context that preloads math-verify."""
    import multiprocessing
    from concurrent.futures import TimeoutError as FutureTimeout

    from pebble import ProcessExpired, ProcessPool

    from limo.grading import GradeResult, grade_item

    global _PEBBLE
    if _PEBBLE is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["limo.grading.compare", "math_verify", "sympy"])
        _PEBBLE = ProcessPool(max_workers=workers, context=context)
    futures = [_PEBBLE.schedule(grade_item, args=(r or "", g or ""), timeout=timeout_s) for r, g in items]
    out = []
    for future in futures:
        try:
            verdict, extracted, boxed = future.result()
        except (FutureTimeout, ProcessExpired):
            verdict, extracted, boxed = "timeout", None, None
        out.append(GradeResult(verdict, extracted, "extended", boxed))
    return out


_PEBBLE = None


def close_pebble() -> None:
    global _PEBBLE
    if _PEBBLE is not None:
        _PEBBLE.stop()
        _PEBBLE.join()
    _PEBBLE = None


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
    old_cold, old_warm, old_results = timed(pebble_grade_many, close_pebble, items)  # "old" = the pebble candidate
    new_cold, new_warm, new_results = timed(grade_many, close_pool, items)
    base_s, base_correct = baseline(items)
    n = len(items)
    old_correct, new_correct = sum(r.correct for r in old_results), sum(r.correct for r in new_results)
    rows = {
        "math-verify direct (1 process)": (base_s, base_correct),
        "pebble ProcessPool, 2 workers (cold)": (old_cold, old_correct),
        "pebble ProcessPool, 2 workers (warm)": (old_warm, old_correct),
        "limo pool (ours), 2 workers (cold)": (new_cold, new_correct),
        "limo pool (ours), 2 workers (warm)": (new_warm, new_correct),
    }
    print(f"{'method':42} {'seconds':>8} {'items/s':>9} {'correct':>8}")
    for name, (secs, corr) in rows.items():
        print(f"{name:42} {secs:8.2f} {n / secs:9.1f} {corr:8d}")
    print(f"ours vs pebble: cold {old_cold / new_cold:.2f}x, warm {old_warm / new_warm:.2f}x (>1 = ours faster)")
    out = {
        "items": n,
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs (2-core CPU dev box shared with other jobs, no GPU)",
        "baseline_seconds": base_s,
        "baseline_items_per_s": n / base_s,
        "baseline_correct": base_correct,
        "pebble_cold_seconds": old_cold,
        "pebble_warm_seconds": old_warm,
        "pebble_correct": old_correct,
        "ours_cold_seconds": new_cold,
        "ours_warm_seconds": new_warm,
        "ours_cold_items_per_s": n / new_cold,
        "ours_warm_items_per_s": n / new_warm,
        "ours_correct": new_correct,
        "ours_verdicts": summarize(new_results),
        "ours_vs_pebble_cold": old_cold / new_cold,
        "ours_vs_pebble_warm": old_warm / new_warm,
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
