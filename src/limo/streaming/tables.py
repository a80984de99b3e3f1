"""Bounded-memory tables for the row-wise stages: read Arrow record batches, write resumable Parquet shards.

A stage reads its input as record batches (`TableSource`: Parquet files read with `ParquetFile.iter_batches`, or an
in-memory `datasets.Dataset` for small runs and tests) and writes its output shard by shard:

    <stage>/parts/kept-00000.parquet, dropped-00000.parquet, 00000.done   one shard = `shard_rows` input rows
    <stage>/data.parquet, dropped.parquet                                 the shards concatenated (the run contract)

A shard's `.done` marker (its counts per drop reason, written last) makes a rerun after kill -9 skip it; only an
unfinished shard is redone. Peak memory is set by `batch_rows`, not by the pool size.
"""

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from limo.io import atomic_write_text
from limo.records import DROP_REASON

DEFAULT_BATCH_ROWS = 8192
DEFAULT_SHARD_ROWS = 65536


@dataclass
class TableSource:
    """A stage's input: Parquet files (read in record batches) or a datasets.Dataset."""

    files: list[Path] = field(default_factory=list)
    dataset: Any = None  # datasets.Dataset

    @classmethod
    def of(cls, data: "TableSource | Any") -> "TableSource":
        return data if isinstance(data, TableSource) else cls(dataset=data)

    def num_rows(self) -> int:
        if self.dataset is not None:
            return len(self.dataset)
        return sum(pq.ParquetFile(f).metadata.num_rows for f in self.files)

    def batches(self, batch_rows: int = DEFAULT_BATCH_ROWS, columns: list[str] | None = None) -> Iterator[pa.Table]:
        """Tables of at most `batch_rows` rows, in order."""
        if self.dataset is not None:
            if not len(self.dataset):
                return
            table = self.dataset.data.table
            if columns is not None:
                table = table.select([c for c in columns if c in table.column_names])
            for start in range(0, table.num_rows, batch_rows):
                yield table.slice(start, batch_rows)
            return
        for f in self.files:
            pf = pq.ParquetFile(f)
            cols = None if columns is None else [c for c in columns if c in pf.schema_arrow.names]
            for batch in pf.iter_batches(batch_size=batch_rows, columns=cols):
                yield pa.Table.from_batches([batch])

    def shards(self, shard_rows: int, batch_rows: int, columns: list[str] | None = None) -> Iterator[list[pa.Table]]:
        """Consecutive groups of batches holding `shard_rows` rows (the last may hold fewer)."""
        group: list[pa.Table] = []
        rows = 0
        for table in self.batches(min(batch_rows, shard_rows), columns):
            while table.num_rows:
                take = min(table.num_rows, shard_rows - rows)
                group.append(table.slice(0, take))
                rows += take
                table = table.slice(take)
                if rows == shard_rows:
                    yield group
                    group, rows = [], 0
        if group:
            yield group


def write_table(path: Path, table: pa.Table) -> None:
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def rows_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows) if rows else pa.table({})


@dataclass
class ShardCounts:
    kept: int = 0
    dropped_by_reason: Counter = field(default_factory=Counter)
    extra: dict[str, Any] = field(default_factory=dict)


class Parts:
    """The resumable shards of one stage (or of one pass of it, `prefix`)."""

    def __init__(self, stage_dir: Path, prefix: str = "", fresh: bool = False):
        """`fresh`: delete this prefix's earlier shards first (a direct call, not a resumable run)."""
        self.dir = stage_dir / "parts"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        if fresh:
            for f in self.dir.glob(f"{prefix}*"):
                if f.name != "hash" and f.is_file():
                    f.unlink()

    def _path(self, kind: str, index: int, suffix: str = ".parquet") -> Path:
        return self.dir / f"{self.prefix}{kind}-{index:05d}{suffix}"

    def done(self, index: int) -> dict | None:
        marker = self.dir / f"{self.prefix}{index:05d}.done"
        return json.loads(marker.read_text()) if marker.exists() else None

    def finish(self, index: int, kept: pa.Table, dropped: pa.Table, extra: dict | None = None) -> dict:
        """Write one shard's kept / dropped rows, then its marker; returns the marker's content."""
        write_table(self._path("kept", index), kept)
        write_table(self._path("dropped", index), dropped)
        reasons = Counter(dropped.column(DROP_REASON).to_pylist()) if dropped.num_rows else Counter()
        if None in reasons or "" in reasons:
            from limo.errors import LimoError

            raise LimoError("stage dropped rows with an empty drop_reason")
        info = {"kept": kept.num_rows, "dropped_by_reason": dict(reasons), "pid": os.getpid(), **(extra or {})}
        atomic_write_text(self.dir / f"{self.prefix}{index:05d}.done", json.dumps(info))
        return info

    def files(self, kind: str) -> list[Path]:
        return sorted(self.dir.glob(f"{self.prefix}{kind}-*.parquet"))


def run_sharded(
    source: TableSource,
    stage_dir: Path,
    fn: Callable[[pa.Table, int], tuple[pa.Table, pa.Table, dict]],
    shard_rows: int = DEFAULT_SHARD_ROWS,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    prefix: str = "",
    fresh: bool = False,
) -> list[dict]:
    """Apply `fn(table, first_row_index) -> (kept, dropped, extra)` to each shard of `source`, skipping shards whose
    marker exists (unless `fresh`); returns every shard's marker."""
    parts = Parts(stage_dir, prefix, fresh=fresh)
    infos = []
    first = 0
    for index, group in enumerate(source.shards(shard_rows, batch_rows)):
        n = sum(t.num_rows for t in group)
        info = parts.done(index)
        if info is None:
            kept, dropped, extra = fn(pa.concat_tables(group, promote_options="default"), first)
            info = parts.finish(index, kept, dropped, extra)
        infos.append(info)
        first += n
    return infos


def unified_schema(files: list[Path]) -> pa.Schema | None:
    """One schema for every part: columns in order of first appearance; a null-typed column takes the type it has
    elsewhere."""
    schemas = [pq.read_schema(f) for f in files]
    schemas = [s for s in schemas if len(s)]
    if not schemas:
        return None
    typed = {}
    for s in schemas:
        for f in s:
            if f.name not in typed or pa.types.is_null(typed[f.name].type):
                typed[f.name] = f
    names = list(dict.fromkeys(n for s in schemas for n in s.names))
    return pa.schema([typed[n] for n in names])


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    cols = []
    for f in schema:
        if f.name in table.column_names:
            col = table.column(f.name)
            cols.append(col if col.type == f.type else col.cast(f.type))
        else:
            cols.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def concat_parts(files: list[Path], out: Path) -> int:
    """Stream the part files into one Parquet file (one row group per part batch); returns the row count."""
    schema = unified_schema(files)
    tmp = out.with_name(out.name + ".tmp")
    if schema is None:
        pq.write_table(pa.table({}), tmp)
        os.replace(tmp, out)
        return 0
    rows = 0
    with pq.ParquetWriter(tmp, schema) as writer:
        for f in files:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=DEFAULT_SHARD_ROWS):
                table = pa.Table.from_batches([batch])
                if table.num_rows:
                    writer.write_table(conform(table, schema))
                    rows += table.num_rows
    os.replace(tmp, out)
    return rows


def finalize(stage_dir: Path, infos: list[dict], prefix: str = "") -> tuple[int, Counter]:
    """Concatenate the shards into data.parquet / dropped.parquet; returns (rows kept, drops per reason)."""
    parts = Parts(stage_dir, prefix)
    kept = concat_parts(parts.files("kept"), stage_dir / "data.parquet")
    concat_parts(parts.files("dropped"), stage_dir / "dropped.parquet")
    reasons: Counter = Counter()
    for info in infos:
        reasons.update(info["dropped_by_reason"])
    if kept != sum(i["kept"] for i in infos):
        from limo.errors import LimoError

        raise LimoError(f"{stage_dir}: shard markers disagree with the shard files; delete {parts.dir} and rerun")
    return kept, reasons
