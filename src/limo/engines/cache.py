"""Persistent generation cache (SQLite in WAL mode) and the `CachedEngine` every command uses.

Each finished batch is committed at once, so a run killed at any point (kill -9) loses at most the batch in
flight; a rerun finds everything else in the cache. Several processes may share one cache file: SQLite's WAL
mode and a busy timeout serialise their writes, and `INSERT OR IGNORE` keeps the first stored completion of a
key, so a key is never stored twice.

Nothing bad is cached: a completion is stored only if `completion_problem` finds nothing wrong with it (errors,
dropped prompts and replies with fields of the wrong type are counted in `EngineStats.errors` instead).
Every row records its `producer` (engine, model revision, library versions); rows written before producers were
recorded read back with `LEGACY_PRODUCER`, and the column is added to old files when they are opened.
A damaged file is detected when it is opened (`PRAGMA quick_check`), before any model loads, with its path and
the command that recovers it (`limo cache repair PATH`, see cache_repair.py). The check reads the whole file, so
a process checks a file again only when its size or modification time changed since it last passed.
"""

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

from limo.engines.base import (
    Completion,
    EngineConfig,
    Prompt,
    Request,
    SamplingParams,
    completion_problem,
    dropped,
    make_backend,
    request_key,
    request_seed,
)
from limo.errors import LimoError

SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    completion TEXT NOT NULL,
    created REAL NOT NULL,
    producer TEXT
)
"""
LEGACY_PRODUCER = {"engine": "unknown", "note": "cached before limo recorded producers"}
COMPLETION_FIELDS = {f.name for f in fields(Completion)} - {"cached", "producer"}
_CHECKED: set[tuple] = set()  # (path, size, mtime) of cache files that passed the check in this process


class CacheCorrupt(LimoError):
    """The cache file is damaged; the message names it and the command that recovers it."""

    def __init__(self, path: Path, detail: str):
        detail = " ".join(detail.replace("*** in database main ***", "").split())[:200]
        super().__init__(
            f"{path}: the generation cache is damaged ({detail}); run `limo cache repair {path}` "
            "(keeps every readable row, moves the damaged file aside) or delete the file"
        )


def completion_from_row(blob: str, producer: str | None) -> Completion:
    data = {k: v for k, v in json.loads(blob).items() if k in COMPLETION_FIELDS}
    return Completion(**data, producer=json.loads(producer) if producer else dict(LEGACY_PRODUCER), cached=True)


def completion_row(key: str, model: str, c: Completion) -> tuple:
    blob = {k: v for k, v in c.to_dict().items() if k != "producer"}
    return (
        key,
        model,
        json.dumps(blob, ensure_ascii=False),
        time.time(),
        json.dumps(c.producer, ensure_ascii=False),
    )  # key order kept: reads back equal


class GenerationCache:
    """key -> Completion, stored in SQLite. Safe to share between threads and processes."""

    def __init__(self, path: str | Path, check: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._guard():
            conn = self._conn()
            stat = self.path.stat()
            state = (self.path.resolve(), stat.st_size, stat.st_mtime_ns)
            if check and state not in _CHECKED:
                problem = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
                if problem != "ok":
                    raise CacheCorrupt(self.path, problem)
                _CHECKED.add(state)
            conn.execute(SCHEMA)
            migrate(conn)

    def _guard(self):
        return _DatabaseErrors(self.path)

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
        with self._guard():
            conn = self._conn()
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                query = f"SELECT key, completion, producer FROM generations WHERE key IN ({marks})"
                for key, blob, producer in conn.execute(query, chunk):
                    found[key] = completion_from_row(blob, producer)
        return found

    def put_many(self, model: str, items: list[tuple[str, Completion]]) -> int:
        """Store completions; returns how many were new. Errors and malformed completions are never cached."""
        rows = [completion_row(key, model, c) for key, c in items if completion_problem(c) is None]
        with self._guard():
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                before = conn.total_changes
                conn.executemany("INSERT OR IGNORE INTO generations VALUES (?, ?, ?, ?, ?)", rows)
                added = conn.total_changes - before
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return added

    def close(self) -> None:
        """Close this thread's connection (the last one to close checkpoints the write-ahead log into the file)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def count(self, model: str | None = None) -> int:
        with self._guard():
            conn = self._conn()
            if model is None:
                return conn.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
            return conn.execute("SELECT COUNT(*) FROM generations WHERE model = ?", (model,)).fetchone()[0]


class _DatabaseErrors:
    """Turns sqlite3.DatabaseError (a damaged or non-SQLite file) into CacheCorrupt naming the file."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if kind is not None and issubclass(kind, sqlite3.DatabaseError) and not _is_busy(error):
            raise CacheCorrupt(self.path, str(error)) from error
        return False


def _is_busy(error: BaseException) -> bool:
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


def migrate(conn: sqlite3.Connection) -> None:
    """Add the `producer` column to a cache file written before provenance was recorded (its rows stay NULL)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(generations)")}
    if "producer" in columns:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(generations)")}
        if "producer" not in columns:  # another process may have migrated it while we waited for the lock
            conn.execute("ALTER TABLE generations ADD COLUMN producer TEXT")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


@dataclass
class EngineStats:
    requests: int = 0
    cache_hits: int = 0
    generated: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    generation_seconds: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)  # requests not generated (never cached), by reason

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.generation_seconds if self.generation_seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {**self.__dict__, "errors": dict(self.errors), "tokens_per_second": round(self.tokens_per_second, 2)}


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
            completions = [self._checked(c) for c in completions]
            self.cache.put_many(identity, [(r.key, c) for r, c in zip(batch, completions, strict=True)])
            for r, c in zip(batch, completions, strict=True):
                found[r.key] = c
                if c.finish_reason == "error":
                    reason = (c.error or "error").split(":")[0]
                    self.stats.errors[reason] = self.stats.errors.get(reason, 0) + 1
                    continue
                self.stats.generated += 1
                self.stats.prompt_tokens += c.prompt_tokens
                self.stats.completion_tokens += c.completion_tokens
            if progress:
                progress(sum(repeats[b.key] for b in batch))
            t0 = time.perf_counter()
        return [[found[r.key] for r in row] for row in grid]

    def _checked(self, c: Completion) -> Completion:
        """`c` stamped with the backend's producer; a malformed completion becomes an error (never cached)."""
        if not c.producer:
            c.producer = dict(getattr(self.backend, "producer", None) or {"engine": self.cfg.engine})
        problem = completion_problem(c)
        if problem is not None and c.finish_reason != "error":
            return dropped(f"invalid_reply: {problem}")
        return c

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
