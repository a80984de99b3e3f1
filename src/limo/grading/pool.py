"""Grading in worker processes with a hard per-item wall-clock timeout (our own pool; pebble was measured and
not adopted, see below).

    grade_many([(response, gold), ...], timeout_s=5.0, workers=2)                    # order preserved
    grade_many([(response, "C", ["opt A", "opt B", "opt C", "opt D"])], rule="boxed")  # multiple choice

Workers are started with `subprocess` (not multiprocessing: no re-import of the caller's `__main__`, no fork of a
parent that holds threads) and talk over a socketpair. Items travel in chunks; a worker reports after every item,
and the parent kills a worker whose current item has run longer than `timeout_s`: that item gets verdict `timeout`
(a worker that crashes on an item also yields `timeout`), a fresh worker replaces it and the rest of its chunk is
resubmitted. An exception inside the grader yields `incorrect`. Model text is never evaluated as code; math-verify's
LaTeX parsing runs only inside the workers.

Why not pebble (issue 15 asked to replace this pool with pebble's ProcessPool "if it holds up"; it did not):
- speed, bench/grading.py in one run on the 500 MATH500 traces, 2 workers (bench/results/grading.json): this pool
  7.20 s cold / 0.75 s warm, pebble (one task per item, per-task timeout, forkserver) 7.59 s cold / 1.57 s warm -
  2.1x slower warm (an earlier run: 0.37 s vs 0.91 s);
- safety: pebble needs a multiprocessing context. With `fork` every worker is a fork of a threaded parent (engines,
  progress bars, torch). With `forkserver`/`spawn` each new worker re-imports the caller's `__main__`: a user script
  without an `if __name__ == "__main__"` guard crashed every worker at start, and pebble's scheduler then blocked for
  good on a full task pipe (measured: a 500-item grading script hung 14 minutes with no worker alive, no error).
  This pool never imports `__main__` and turns a worker that cannot start into one clear error.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing as mp
import multiprocessing.connection
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from limo.grading.compare import grade_item, load_math_verify, rule_extract
from limo.grading.result import GradeResult, Rule

Item = tuple[str | None, str | None] | tuple[str | None, str | None, list[str] | None]


def _worker_main(conn) -> None:
    """Worker loop: receive a chunk [(idx, response, gold, rule, choices), ...], send (idx, verdict, extracted,
    boxed_verdict) per item."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    load_math_verify()  # import math-verify/sympy before reporting ready, so the first item's clock does not pay
    conn.send(("ready",))
    while True:
        try:
            chunk = conn.recv()
        except (EOFError, OSError):
            return
        if chunk is None:
            return
        for idx, response, gold, rule, choices in chunk:
            try:
                verdict, extracted, boxed = grade_item(response, gold, rule, choices)
            except Exception:  # RecursionError, sympy internals: an answer we cannot grade is not correct
                verdict, extracted, boxed = "incorrect", _safe_extract(response, rule), None
            if extracted is not None and len(extracted) > 2000:
                extracted = extracted[:2000]
            conn.send((idx, verdict, extracted, boxed))


def worker_entry(fd: int) -> None:
    """`python -c` entry of a worker process: talk over the inherited socket `fd`."""
    _worker_main(multiprocessing.connection.Connection(fd))


class _Worker:
    """One grading process started with subprocess (not multiprocessing: no re-import of the caller's __main__,
    no fork of a parent that holds threads). It talks over a socketpair; EOF on it means the process died."""

    def __init__(self):
        parent, child = mp.Pipe()
        env = dict(os.environ)
        src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        code = "import sys; from limo.grading.pool import worker_entry; worker_entry(int(sys.argv[1]))"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, str(child.fileno())],
            pass_fds=(child.fileno(),),
            stdin=subprocess.DEVNULL,
            env=env,
        )
        child.close()
        self.conn = parent
        self.ready = False
        self.pending: deque[int] = deque()
        self.since = 0.0

    def send(self, chunk: list[tuple]) -> None:
        self.pending = deque(item[0] for item in chunk)
        self.since = time.monotonic()
        self.conn.send(chunk)

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(5)
        except Exception:
            pass
        try:
            self.conn.close()
        except Exception:
            pass

    def close(self) -> None:
        try:
            self.conn.send(None)
            self.proc.wait(1)
        except Exception:
            pass
        if self.proc.poll() is None:
            self.kill()
        else:
            self.conn.close()


class GradingPool:
    """Worker processes with a hard per-item wall-clock timeout. Reused across calls (see `grade_many`)."""

    def __init__(self, workers: int):
        self.size = max(1, workers)
        self.workers: list[_Worker] = []
        self.pid = os.getpid()
        self.restarts = 0

    def _ensure(self, n: int) -> None:
        while len(self.workers) < n:
            self.workers.append(_Worker())

    def close(self) -> None:
        for w in self.workers:
            w.close()
        self.workers = []

    def grade_many(
        self,
        items: Sequence[Item],
        timeout_s: float = 5.0,
        progress: Callable[[int], None] | None = None,
        chunk_size: int | None = None,
        rule: Rule = "extended",
    ) -> list[GradeResult]:
        n = len(items)
        if n == 0:
            return []
        nworkers = min(self.size, n)
        self._ensure(nworkers)
        if chunk_size is None:
            chunk_size = max(1, min(32, n // (nworkers * 4) or 1))
        queue: deque[list[int]] = deque(list(range(i, min(i + chunk_size, n))) for i in range(0, n, chunk_size))
        results: list[GradeResult | None] = [None] * n
        done = 0
        active = self.workers[:nworkers]
        busy: dict[int, _Worker] = {}  # position in `active` -> worker with pending items

        def payload(idxs: list[int]) -> list[tuple]:
            return [
                (i, items[i][0] or "", "" if items[i][1] is None else str(items[i][1]), rule, _choices(items[i]))
                for i in idxs
            ]

        def replace(pos: int) -> None:
            active[pos].kill()
            self.restarts += 1
            fresh = _Worker()
            self.workers[self.workers.index(active[pos])] = fresh
            active[pos] = fresh

        while done < n:
            for pos, w in enumerate(active):
                if pos not in busy and queue:
                    idxs = queue.popleft()
                    try:
                        w.send(payload(idxs))
                    except (BrokenPipeError, OSError):
                        queue.appendleft(idxs)
                        replace(pos)
                        continue
                    busy[pos] = w
            now = time.monotonic()
            # a worker still importing (not ready) gets its clock started when it says ready
            deadlines = [w.since + timeout_s - now for w in busy.values() if w.ready]
            wait_for = max(0.0, min(deadlines)) if deadlines else timeout_s
            multiprocessing.connection.wait([w.conn for w in busy.values()], timeout=wait_for + 0.01)
            for pos in list(busy):
                w = busy[pos]
                dead = False
                try:
                    while w.pending and w.conn.poll():
                        msg = w.conn.recv()
                        w.since = time.monotonic()
                        if msg[0] == "ready":
                            w.ready = True
                            continue
                        idx, verdict, extracted, boxed = msg
                        results[idx] = GradeResult(verdict, extracted, rule, boxed)
                        w.pending.popleft()
                        done += 1
                        if progress:
                            progress(1)
                except (EOFError, OSError):
                    dead = True
                if not w.pending:
                    del busy[pos]
                    continue
                if not w.ready and not dead and time.monotonic() - w.since < max(60.0, timeout_s):
                    continue  # still starting up (imports); the startup gets its own generous limit
                if not w.ready:
                    w.kill()
                    from limo.errors import LimoError

                    raise LimoError(
                        f"a grading worker failed to start (exit code {w.proc.returncode}); "
                        f"check that `{sys.executable} -c 'import limo.grading.pool, math_verify'` works"
                    )
                if dead or time.monotonic() - w.since > timeout_s:
                    stuck = w.pending.popleft()
                    results[stuck] = GradeResult("timeout", _safe_extract(items[stuck][0], rule), rule)
                    done += 1
                    if progress:
                        progress(1)
                    if w.pending:
                        queue.appendleft(list(w.pending))
                    del busy[pos]
                    replace(pos)
        return [r for r in results if r is not None]


def _safe_extract(text: str | None, rule: str) -> str | None:
    try:
        return rule_extract(text or "", rule)
    except Exception:
        return None


def _choices(item: Item) -> list[str] | None:
    return list(item[2]) if len(item) > 2 and item[2] else None


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
        pool = _pool(workers or default_workers())
        return pool.grade_many(items, timeout_s=timeout_s, progress=progress, rule=rule)


def grade(response: str | None, gold: str | None, timeout_s: float = 5.0, rule: Rule = "extended") -> GradeResult:
    """Grade one response against one gold answer (in a worker process, with the hard timeout)."""
    return grade_many([(response, gold)], timeout_s=timeout_s, rule=rule)[0]
