"""Grading in worker processes with a hard per-item wall-clock timeout, on pebble's ProcessPool.

    grade_many([(response, gold), ...], timeout_s=5.0, workers=2)                    # order preserved
    grade_many([(response, "C", ["opt A", "opt B", "opt C", "opt D"])], rule="boxed")  # multiple choice

Each item is one pebble task with `timeout=timeout_s`, measured from the moment a worker starts it: a worker stuck
longer is killed (pebble starts a new one) and the item gets verdict `timeout`; a worker that dies on an item also
yields `timeout`; an exception inside the grader yields `incorrect` (an answer we cannot grade is not correct).
Workers come from a `forkserver` context that preloads math-verify and sympy, so a replacement starts in
milliseconds and no worker is a fork of a parent that holds threads (engines, progress bars). Model text is never
evaluated as code; math-verify's LaTeX parsing runs only inside the workers.

Why pebble: it replaces ~250 lines of our own socketpair pool (chunking, kill-and-replace, startup handling) with a
maintained library, and it holds up: every pool test (power towers, crashes, threads, code payloads) passes. It is
slower per item - bench/grading.py, same run, 500 MATH500 traces, 2 workers: old pool 3.67 s cold / 0.37 s warm,
pebble 4.68 s cold / 0.91 s warm (one task and one pipe round trip per item, no chunks) - about 1 ms per item,
which is noise next to generating the response; both stay far above math-verify alone (12.9 s).
bench/results/grading.json and docs/PERFORMANCE.md ("Grading") have the numbers.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import TimeoutError as FutureTimeout

from limo.grading.compare import grade_item
from limo.grading.result import GradeResult, Rule

Item = tuple[str | None, str | None] | tuple[str | None, str | None, list[str] | None]

_PRELOAD = ["limo.grading.compare", "limo.grading.choice", "math_verify", "sympy"]


def _init_worker() -> None:
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    from limo.grading.compare import load_math_verify

    load_math_verify()


def _grade_capped(
    response: str, gold: str, rule: str, choices: list[str] | None
) -> tuple[str, str | None, str | None]:
    verdict, extracted, boxed = grade_item(response, gold, rule, choices)
    if extracted is not None and len(extracted) > 2000:
        extracted = extracted[:2000]
    return verdict, extracted, boxed


def _safe_extract(response: str | None, rule: str) -> str | None:
    from limo.grading.compare import rule_extract

    try:
        return rule_extract(response or "", rule)
    except Exception:
        return None


class GradingPool:
    """A pebble ProcessPool of `workers` grading processes, reused across calls (see `grade_many`)."""

    def __init__(self, workers: int):
        from pebble import ProcessPool

        self.size = max(1, workers)
        self.pid = os.getpid()
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        self.pool = ProcessPool(max_workers=self.size, initializer=_init_worker, context=context)

    def close(self) -> None:
        self.pool.stop()
        self.pool.join(timeout=10)

    def grade_many(
        self,
        items: Sequence[Item],
        timeout_s: float = 5.0,
        progress: Callable[[int], None] | None = None,
        rule: Rule = "extended",
    ) -> list[GradeResult]:
        from pebble import ProcessExpired

        futures = []
        for item in items:
            response, gold = item[0] or "", "" if item[1] is None else str(item[1])
            choices = list(item[2]) if len(item) > 2 and item[2] else None
            futures.append(self.pool.schedule(_grade_capped, args=(response, gold, rule, choices), timeout=timeout_s))
        results = []
        for item, future in zip(items, futures, strict=True):
            try:
                verdict, extracted, boxed = future.result()
            except (FutureTimeout, ProcessExpired):
                verdict, extracted, boxed = "timeout", _safe_extract(item[0], rule), None
            except Exception:  # RecursionError, sympy internals: an answer we cannot grade is not correct
                verdict, extracted, boxed = "incorrect", _safe_extract(item[0], rule), None
            results.append(GradeResult(verdict, extracted, rule, boxed))
            if progress:
                progress(1)
        return results


_POOL: GradingPool | None = None
_POOL_LOCK = threading.RLock()


def _pool(workers: int) -> GradingPool:
    global _POOL
    if _POOL is not None and (_POOL.pid != os.getpid() or _POOL.size != workers):
        if _POOL.pid == os.getpid():
            _POOL.close()
        _POOL = None
    if _POOL is None:
        _POOL = GradingPool(workers)
    return _POOL


@atexit.register
def close_pool() -> None:
    global _POOL
    if _POOL is not None and _POOL.pid == os.getpid():
        _POOL.close()
    _POOL = None


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def grade_many(
    items: Sequence[Item],
    timeout_s: float = 5.0,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    rule: Rule = "extended",
) -> list[GradeResult]:
    """Grade (response, gold[, choices]) items in worker processes with a hard per-item timeout. Order preserved."""
    if timeout_s <= 0:
        raise ValueError("timeout_s must be > 0")
    if rule not in ("boxed", "extended"):
        raise ValueError(f"unknown grading rule {rule!r}; known: boxed, extended")
    items = list(items)
    if not items:
        return []
    with _POOL_LOCK:  # one shared pool: callers on several threads take turns
        return _pool(workers or default_workers()).grade_many(items, timeout_s=timeout_s, progress=progress, rule=rule)


def grade(response: str | None, gold: str | None, timeout_s: float = 5.0, rule: Rule = "extended") -> GradeResult:
    """Grade one response against one gold answer (in a worker process, with the hard timeout)."""
    return grade_many([(response, gold)], timeout_s=timeout_s, rule=rule)[0]
