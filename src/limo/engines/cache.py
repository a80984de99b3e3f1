"""Persistent generation cache (SQLite in WAL mode) and the `CachedEngine` every command uses.

Each finished batch is committed at once, so a run killed at any point (kill -9) loses at most the batch in
flight; a rerun finds everything else in the cache. Several processes may share one cache file: SQLite's WAL
mode and a busy timeout serialise their writes, and `INSERT OR IGNORE` keeps the first stored completion of a
key, so a key is never stored twice.
"""

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from limo.engines.base import (
    Completion,
    EngineConfig,
    Prompt,
    Request,
    SamplingParams,
    make_backend,
    request_key,
    request_seed,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    completion TEXT NOT NULL,
    created REAL NOT NULL
)
"""


class GenerationCache:
    """key -> Completion, stored in SQLite. Safe to share between threads and processes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as conn:
            conn.execute(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=60000")
            self._local.conn = conn
        return conn

    def get_many(self, keys: list[str]) -> dict[str, Completion]:
        found: dict[str, Completion] = {}
        conn = self._conn()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, blob in conn.execute(f"SELECT key, completion FROM generations WHERE key IN ({marks})", chunk):
                found[key] = Completion(**json.loads(blob), cached=True)
        return found

    def put_many(self, model: str, items: list[tuple[str, Completion]]) -> int:
        """Store completions; returns how many were new. Errors are never cached."""
        rows = [
            (key, model, json.dumps(c.to_dict(), ensure_ascii=False), time.time())
            for key, c in items
            if c.finish_reason != "error"
        ]
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO generations VALUES (?, ?, ?, ?)", rows)
            added = conn.total_changes - before
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return added

    def count(self, model: str | None = None) -> int:
        conn = self._conn()
        if model is None:
            return conn.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
        return conn.execute("SELECT COUNT(*) FROM generations WHERE model = ?", (model,)).fetchone()[0]


@dataclass
class EngineStats:
    requests: int = 0
    cache_hits: int = 0
    generated: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    generation_seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.generation_seconds if self.generation_seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {**self.__dict__, "tokens_per_second": round(self.tokens_per_second, 2)}


ProgressFn = Callable[[int], None]


class CachedEngine:
    """The engine interface used everywhere: cache lookups first, the backend only for misses."""

    def __init__(self, cfg: EngineConfig, cache: GenerationCache):
        self.cfg = cfg
        self.cache = cache
        self.stats = EngineStats()
        self._backend = None

    @property
    def backend(self):
        if self._backend is None:
            self._backend = make_backend(self.cfg)
        return self._backend

    def requests(
        self, prompts: list[Prompt], sampling: SamplingParams, n: int, identity: str | None = None
    ) -> list[list[Request]]:
        out = []
        identity = identity or self.cfg.identity
        for prompt in prompts:
            row = []
            for j in range(n):
                key = request_key(identity, prompt, sampling, j)
                row.append(Request(prompt=prompt, sampling=sampling, sample_index=j, key=key, seed=request_seed(key)))
            out.append(row)
        return out

    def generate(
        self,
        prompts: list[Prompt],
        sampling: SamplingParams,
        n: int = 1,
        progress: ProgressFn | None = None,
        sample_offset: int = 0,
    ) -> list[list[Completion]]:
        """n completions per prompt, in order. `sample_offset` asks for samples offset..offset+n-1
        (adaptive sampling draws more samples of the same prompt in later rounds)."""
        if n < 1:
            raise ValueError("n must be >= 1")
        identity = self.cfg.identity  # reads a local model dir's weight files: once per call, not per batch
        grid = self.requests(prompts, sampling, n + sample_offset, identity)
        grid = [row[sample_offset:] for row in grid]
        flat = [r for row in grid for r in row]
        found = self.cache.get_many([r.key for r in flat])
        self.stats.requests += len(flat)
        self.stats.cache_hits += len(found)
        if progress and found:
            progress(len(found))
        missing = [r for r in flat if r.key not in found]
        # one request per key even if a prompt repeats in the input; progress counts every repeat
        unique: dict[str, Request] = {}
        repeats: dict[str, int] = {}
        for r in missing:
            unique.setdefault(r.key, r)
            repeats[r.key] = repeats.get(r.key, 0) + 1
        todo = list(unique.values())
        if todo:
            self.backend  # noqa: B018 - load the model (or start the replicas) before the clock starts
        t0 = time.perf_counter()
        for batch, completions in self._batches(todo):
            self.stats.generation_seconds += time.perf_counter() - t0
            self.cache.put_many(identity, [(r.key, c) for r, c in zip(batch, completions, strict=True)])
            for r, c in zip(batch, completions, strict=True):
                found[r.key] = c
                self.stats.generated += 1
                self.stats.prompt_tokens += c.prompt_tokens
                self.stats.completion_tokens += c.completion_tokens
            if progress:
                progress(sum(repeats[b.key] for b in batch))
            t0 = time.perf_counter()
        return [[found[r.key] for r in row] for row in grid]

    def _batches(self, todo: list[Request]):
        """(batch, completions) as batches finish. A backend with `generate_stream` (ray) runs many batches at once
        and yields each as it finishes; otherwise batches of `backend.batch_size` run one after another."""
        if not todo:
            return
        if hasattr(self.backend, "generate_stream"):
            yield from self.backend.generate_stream(todo)
            return
        step = max(1, self.backend.batch_size)
        for start in range(0, len(todo), step):
            batch = todo[start : start + step]
            yield batch, self.backend.generate_batch(batch)

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None
