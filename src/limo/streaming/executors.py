"""Where the per-batch work of the streaming stages runs: this process (`local`) or a Ray cluster (`ray`).

A streaming stage splits into per-batch functions (signatures, contamination matches, ...) and small global steps
(LSH buckets, quotas) on the driver. `Executor.map(source, fn, shard_dir)` applies `fn: pa.Table -> pa.Table` to
every shard of the source and returns the output tables' files, in input order:

- local: shard by shard in this process; each finished shard's output is kept on disk, so a rerun after kill -9
  redoes only the unfinished shard.
- ray: Ray Data, `ray.data.read_parquet(files) -> map_batches(fn, batch_format="pyarrow")`, order preserved; the
  outputs stream back to the driver (`iter_batches`), which writes them, so only the inputs must be readable by
  the workers (a shared path on a real cluster). `address` connects to an existing cluster (`ray://host:10001` or
  `auto`); None starts a local one with `num_cpus` workers. Generation stages keep using the cache-backed engines.
  A Ray map is not resumable per shard (the local executor is).

Both produce the same rows in the same order, so a stage gives the same kept ids and drop reasons on either.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from limo.streaming.tables import DEFAULT_BATCH_ROWS, DEFAULT_SHARD_ROWS, TableSource, write_table

BatchFn = Callable[[pa.Table], pa.Table]


@dataclass
class ExecutorConfig:
    """Recipe block `executor:` - `local` (default) or `ray` (+ address / num_cpus)."""

    kind: str = "local"
    address: str | None = None  # ray: existing cluster; None starts a local one
    num_cpus: int | None = None  # ray: workers of a local cluster (None: all cores)
    shard_rows: int = DEFAULT_SHARD_ROWS
    batch_rows: int = DEFAULT_BATCH_ROWS

    def __post_init__(self):
        if self.kind not in ("local", "ray"):
            raise ValueError(f"executor.kind must be local or ray, got {self.kind!r}")
        if self.shard_rows < 1 or self.batch_rows < 1:
            raise ValueError("executor.shard_rows and batch_rows must be >= 1")


class LocalExecutor:
    def __init__(self, cfg: ExecutorConfig | None = None):
        self.cfg = cfg or ExecutorConfig()

    def describe(self) -> dict:
        return {"kind": "local"}

    def map(self, source: TableSource, fn: BatchFn, out_dir: Path, resumable: bool) -> list[Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        if not resumable:
            for f in out_dir.glob("*.parquet"):
                f.unlink()
        files = []
        for index, group in enumerate(source.shards(self.cfg.shard_rows, self.cfg.batch_rows)):
            path = out_dir / f"{index:05d}.parquet"
            if not path.exists():  # written atomically, so an existing file is a finished shard
                write_table(path, pa.concat_tables([fn(t) for t in group], promote_options="default"))
            files.append(path)
        return files


class RayExecutor:
    """Ray Data on a local multi-worker cluster or an existing one (`address`)."""

    def __init__(self, cfg: ExecutorConfig):
        import ray

        self.cfg = cfg
        if not ray.is_initialized():
            if cfg.address:
                ray.init(address=cfg.address, ignore_reinit_error=True, log_to_driver=False)
            else:
                ray.init(
                    address="local",
                    num_cpus=cfg.num_cpus,
                    include_dashboard=False,
                    log_to_driver=False,
                    runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}},
                )

    def describe(self) -> dict:
        """What the stage ran on (recorded in its stats.json)."""
        import ray

        resources = ray.cluster_resources()
        return {"kind": "ray", "nodes": len(ray.nodes()), "cpus": resources.get("CPU", 0)}

    def map(self, source: TableSource, fn: BatchFn, out_dir: Path, resumable: bool) -> list[Path]:
        import ray

        out_dir.mkdir(parents=True, exist_ok=True)
        for f in out_dir.glob("*.parquet"):
            f.unlink()
        files = source.files
        if not files:  # an in-memory source: hand it to Ray as a file first
            files = [out_dir / "input.parquet.src"]
            write_table(files[0], pa.concat_tables(list(source.batches()), promote_options="default"))
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ds = ray.data.read_parquet([str(f) for f in files], file_extensions=None)
        ds = ds.map_batches(fn, batch_format="pyarrow", batch_size=self.cfg.batch_rows)
        out = []
        for index, batch in enumerate(ds.iter_batches(batch_format="pyarrow", batch_size=self.cfg.shard_rows)):
            out.append(out_dir / f"{index:05d}.parquet")
            write_table(out[-1], batch)
        if not source.files:
            os.unlink(files[0])
        return out


def make_executor(cfg: ExecutorConfig | None) -> LocalExecutor | RayExecutor:
    cfg = cfg or ExecutorConfig()
    return RayExecutor(cfg) if cfg.kind == "ray" else LocalExecutor(cfg)


def read_columns(files: list[Path], columns: list[str]) -> pa.Table:
    """Columns of the map outputs, concatenated (compact global state: hashes, codes, small numbers)."""
    tables = [pq.read_table(f, columns=columns) for f in files]
    return pa.concat_tables(tables) if tables else pa.table({c: [] for c in columns})
