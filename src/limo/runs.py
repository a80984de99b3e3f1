"""Run directories and resumable stages.

A run is a folder `<run>/` with one sub-folder per stage, `<NN>_<stage>/`, holding:
  data.parquet     the rows kept by the stage
  dropped.parquet  the rows it dropped, each with `drop_reason`
  stats.json       rows in / out, drops per reason, plus the stage's own numbers
  config.yaml      the resolved stage config
  done             the chained config hash; written last, so a stage without it is redone on the next run

`Run.lock()` holds `<run>/.lock` (an OS file lock, released when the process ends, even on kill -9) for the whole
run, so a second process on the same run directory refuses with one line instead of resuming from half-written
stages.

The chained hash covers this stage's config and every upstream one, so changing a stage's config reruns it
and everything after it, while finished stages with the same hash are loaded from disk. The same `done` marker
(`done_key` / `mark_done`) makes the train and eval steps of `limo run` resumable: one resume mechanism.
"""

import dataclasses
import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from datasets import Dataset

from limo.config import config_hash
from limo.errors import LimoError
from limo.io import atomic_write_text, write_json
from limo.records import DROP_REASON


class StageResult:
    """What a stage returns: the kept rows, the dropped rows (each with `drop_reason`), and extra stats.

    In-memory stages give Datasets (`from_rows`); streaming stages write `<stage>/data.parquet` and
    `dropped.parquet` themselves and give their counts (`from_files`); `kept` / `dropped` then load lazily."""

    def __init__(self, kept=None, dropped=None, stats: dict | None = None):
        self._kept, self._dropped = kept, dropped
        self.stats: dict[str, Any] = stats or {}
        self.written_to: Path | None = None
        self.rows_out = len(kept) if kept is not None else 0
        self.dropped_by_reason: Counter = Counter()

    @classmethod
    def from_rows(cls, kept: list[dict], dropped: list[dict], stats: dict | None = None) -> "StageResult":
        return cls(kept=rows_to_dataset(kept), dropped=rows_to_dataset(dropped), stats=stats)

    @classmethod
    def from_files(cls, stage_dir: Path, rows_out: int, dropped_by_reason: dict, stats: dict | None = None):
        result = cls(stats=stats)
        result.written_to, result.rows_out = Path(stage_dir), rows_out
        result.dropped_by_reason = Counter(dropped_by_reason)
        return result

    def _load(self, which: str) -> Dataset:
        import pyarrow.parquet as pq
        from datasets.table import InMemoryTable

        table = pq.read_table(self.written_to / f"{which}.parquet")
        return Dataset(InMemoryTable(table)) if table.num_columns else Dataset.from_dict({})

    @property
    def kept(self) -> Dataset:
        if self._kept is None:
            self._kept = self._load("data")
        return self._kept

    @property
    def dropped(self) -> Dataset:
        if self._dropped is None:
            self._dropped = self._load("dropped")
        return self._dropped


def rows_to_dataset(rows: list[dict]) -> Dataset:
    return Dataset.from_list(rows) if rows else Dataset.from_dict({})


@dataclass
class StageContext:
    """What a stage may use besides its input table and config."""

    run_dir: Path
    stage_dir: Path
    generation_cache: Path
    seed: int = 0
    executor: Any = None  # limo.streaming.executors executor for streaming stages (None: local)
    resumable: bool = False  # run_stages sets True: a streaming stage keeps its finished shards across restarts


StageFn = Callable[[Dataset, Any, StageContext], StageResult]


@dataclass
class Stage:
    name: str
    config: Any
    fn: StageFn
    streaming: bool = False  # fn takes a limo.streaming.tables.TableSource and writes its own outputs


def done_key(step_dir: Path) -> str | None:
    """The key in `step_dir/done` (None when the step has not finished)."""
    marker = Path(step_dir) / "done"
    return marker.read_text().strip() if marker.exists() else None


def mark_done(step_dir: Path, key: str) -> None:
    """Write the step's `done` marker last, once all its outputs are on disk."""
    atomic_write_text(Path(step_dir) / "done", key + "\n")


def clear_done(step_dir: Path) -> None:
    """Remove the marker before a step rewrites its outputs, so a crash midway redoes the step."""
    (Path(step_dir) / "done").unlink(missing_ok=True)


class Run:
    """A run directory and its stages."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run directory for this process; a second holder gets a LimoError naming the directory."""
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.root / ".lock"), is_singleton=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise LimoError(
                f"{self.root}: run directory is in use by another limo process; wait for it to finish or use another "
                "--out"
            ) from None
        try:
            yield
        finally:
            lock.release()

    def stage_dir(self, index: int, name: str) -> Path:
        return self.root / f"{index:02d}_{name}"

    def done_hash(self, index: int, name: str) -> str | None:
        return done_key(self.stage_dir(index, name))

    def load(self, index: int, name: str, which: str = "data") -> Dataset:
        path = self.stage_dir(index, name) / f"{which}.parquet"
        if not path.exists():
            raise LimoError(f"{path}: stage output not found (has stage '{name}' run?)")
        return Dataset.from_parquet(str(path))

    def stats(self, index: int, name: str) -> dict:
        import json

        return json.loads((self.stage_dir(index, name) / "stats.json").read_text())

    def save(self, index: int, name: str, result: StageResult, config: Any, chained_hash: str, stats: dict) -> None:
        out = self.stage_dir(index, name)
        out.mkdir(parents=True, exist_ok=True)
        clear_done(out)
        if result.written_to is None:
            result.kept.to_parquet(str(out / "data.parquet"))
            result.dropped.to_parquet(str(out / "dropped.parquet"))
        write_json(out / "stats.json", stats)
        cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config
        atomic_write_text(out / "config.yaml", yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
        mark_done(out, chained_hash)


def chain_hash(previous: str, config: Any, name: str) -> str:
    return hashlib.sha256(f"{previous}|{name}|{config_hash(config)}".encode()).hexdigest()[:16]


def stage_stats(rows_in: int, result: StageResult, seconds: float) -> dict[str, Any]:
    """rows in/out and drops per reason; checks that every input row is accounted for."""
    if result.written_to is not None:
        reasons = result.dropped_by_reason
        return {
            "rows_in": rows_in,
            "rows_out": result.rows_out,
            "dropped": sum(reasons.values()),
            "dropped_by_reason": dict(sorted(reasons.items())),
            "seconds": round(seconds, 3),
            **result.stats,
        }
    dropped = result.dropped
    reasons: Counter = Counter()
    if len(dropped):
        if DROP_REASON not in dropped.column_names:
            raise LimoError("stage dropped rows without a drop_reason column")
        reasons.update(dropped[DROP_REASON])
        if None in reasons or "" in reasons:
            raise LimoError("stage dropped rows with an empty drop_reason")
    return {
        "rows_in": rows_in,
        "rows_out": len(result.kept),
        "dropped": sum(reasons.values()),
        "dropped_by_reason": dict(sorted(reasons.items())),
        "seconds": round(seconds, 3),
        **result.stats,
    }


def _pass_through(run: Run, index: int, name: str, previous: Path) -> StageResult:
    """A disabled stage (config `enabled: False`) keeps every row: its data.parquet is the previous one, linked."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = run.stage_dir(index, name)
    for path in (out / "data.parquet", out / "dropped.parquet"):
        path.unlink(missing_ok=True)
    try:
        (out / "data.parquet").hardlink_to(previous)
    except OSError:
        import shutil

        shutil.copyfile(previous, out / "data.parquet")
    pq.write_table(pa.table({}), out / "dropped.parquet")
    rows = pq.ParquetFile(previous).metadata.num_rows
    return StageResult.from_files(out, rows, {}, {"enabled": False})


def _clear_stale_parts(stage_dir: Path, chained: str) -> None:
    """Shards written under another config hash are deleted before the stage runs again."""
    import shutil

    parts = stage_dir / "parts"
    marker = parts / "hash"
    if parts.exists() and (not marker.exists() or marker.read_text().strip() != chained):
        shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    marker.write_text(chained + "\n")


def run_stages(
    run: Run,
    stages: list[Stage],
    ds: Dataset,
    context: Callable[[Path], StageContext],
    on_stage: Callable[[str, dict, bool], None] | None = None,
    check_accounting: bool = True,
) -> Dataset:
    """Run `stages` in order, skipping those whose done marker matches the chained config hash.

    A streaming stage (`Stage.streaming`) gets the previous stage's data.parquet as a TableSource (read in
    record batches) and writes its own outputs; an in-memory stage gets a Dataset. A stage whose config has
    `enabled: False` is passed through without being called. `on_stage(name, stats, skipped)` is called after each
    stage (for summaries). `check_accounting`: require rows_in == rows_out + dropped (stages that expand rows set
    it False per stage via stats['expands_rows'] = True).
    """
    from limo.streaming.tables import TableSource

    chained = "root"
    previous: Path | None = None  # data.parquet of the last stage, when it is on disk
    current: Dataset | None = ds
    for index, stage in enumerate(stages, start=1):
        chained = chain_hash(chained, stage.config, stage.name)
        stage_dir = run.stage_dir(index, stage.name)
        if run.done_hash(index, stage.name) == chained:
            previous, current = stage_dir / "data.parquet", None
            if on_stage:
                on_stage(stage.name, run.stats(index, stage.name), True)
            continue
        stage_dir.mkdir(parents=True, exist_ok=True)
        _clear_stale_parts(stage_dir, chained)
        start = time.perf_counter()
        if previous is not None and getattr(stage.config, "enabled", True) is False:
            rows_in = pq_rows(previous)
            result = _pass_through(run, index, stage.name, previous)
        elif stage.streaming:
            source = TableSource(files=[previous]) if current is None and previous else TableSource.of(current)
            rows_in = source.num_rows()
            ctx = context(stage_dir)
            ctx.resumable = True
            result = stage.fn(source, stage.config, ctx)
        else:
            if current is None:
                # a stage that kept 0 rows may leave a schema-less file that datasets cannot read
                readable = previous is not None and pq_rows(previous) > 0
                current = Dataset.from_parquet(str(previous)) if readable else Dataset.from_dict({})
            rows_in = len(current)
            result = stage.fn(current, stage.config, context(stage_dir))
        stats = stage_stats(rows_in, result, time.perf_counter() - start)
        if (
            check_accounting
            and not stats.get("expands_rows")
            and stats["rows_in"] != stats["rows_out"] + stats["dropped"]
        ):
            raise LimoError(
                f"stage '{stage.name}' lost rows: {stats['rows_in']} in, {stats['rows_out']} out, "
                f"{stats['dropped']} dropped"
            )
        run.save(index, stage.name, result, stage.config, chained, stats)
        if result.written_to is not None:
            previous, current = stage_dir / "data.parquet", None
        else:
            previous, current = stage_dir / "data.parquet", result.kept
        if on_stage:
            on_stage(stage.name, stats, False)
    if current is None:
        current = Dataset.from_parquet(str(previous)) if previous else Dataset.from_dict({})
    return current


def pq_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows
