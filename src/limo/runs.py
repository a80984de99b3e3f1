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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from datasets import Dataset

from limo.errors import LimoError
from limo.io import atomic_write_text, write_json
from limo.config import config_hash
from limo.records import DROP_REASON


@dataclass
class StageResult:
    """What a stage returns: the kept rows, the dropped rows (each with `drop_reason`), and extra stats."""

    kept: Dataset
    dropped: Dataset
    stats: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, kept: list[dict], dropped: list[dict], stats: dict | None = None) -> "StageResult":
        return cls(kept=rows_to_dataset(kept), dropped=rows_to_dataset(dropped), stats=stats or {})


def rows_to_dataset(rows: list[dict]) -> Dataset:
    return Dataset.from_list(rows) if rows else Dataset.from_dict({})


@dataclass
class StageContext:
    """What a stage may use besides its input table and config."""

    run_dir: Path
    stage_dir: Path
    generation_cache: Path
    seed: int = 0


StageFn = Callable[[Dataset, Any, StageContext], StageResult]


@dataclass
class Stage:
    name: str
    config: Any
    fn: StageFn


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


def run_stages(
    run: Run,
    stages: list[Stage],
    ds: Dataset,
    context: Callable[[Path], StageContext],
    on_stage: Callable[[str, dict, bool], None] | None = None,
    check_accounting: bool = True,
) -> Dataset:
    """Run `stages` in order, skipping those whose done marker matches the chained config hash.

    `on_stage(name, stats, skipped)` is called after each stage (for summaries).
    `check_accounting`: require rows_in == rows_out + dropped (stages that expand rows set it False per stage
    via stats['expands_rows'] = True).
    """
    chained = "root"
    for index, stage in enumerate(stages, start=1):
        chained = chain_hash(chained, stage.config, stage.name)
        if run.done_hash(index, stage.name) == chained:
            ds = run.load(index, stage.name)
            if on_stage:
                on_stage(stage.name, run.stats(index, stage.name), True)
            continue
        stage_dir = run.stage_dir(index, stage.name)
        stage_dir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        rows_in = len(ds)
        result = stage.fn(ds, stage.config, context(stage_dir))
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
        ds = result.kept
        if on_stage:
            on_stage(stage.name, stats, False)
    return ds
