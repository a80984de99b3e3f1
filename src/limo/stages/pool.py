"""Stage 01 `pool`: read problem sources into one table of problem rows.

Sources (in recipe order; that order is also the default dedup priority):
  - a local JSONL / JSON / Parquet file: `path: data:pools/math_train.jsonl` (`data:` = limo.paths.data_dir()),
  - an HF dataset: `hf_id: org/name` (+ `hf_config`, `split`), or a builder with files:
    `hf_id: parquet, data_files: [a.parquet]` (uses `datasets.load_dataset`).
`fields` maps our column names (id, problem, answer, solution, subject, level) to the source's column names.
Text is normalised (NFKC, whitespace); the gold answer comes from the answer field or else the last `\\boxed{}` of
the solution. Rows without a usable answer or whose problem is not a non-empty string are dropped and counted;
a source that is empty is an InputError naming the file. A malformed row (bad JSON, not an object, not UTF-8, a
mapped field missing) is an InputError naming the file, line and field with `invalid_rows: error` (default), or is
dropped with drop_reason "invalid_row" (+ `pool_file`, `pool_line`, `pool_error`) with `invalid_rows: drop`.

Sources are read in shards of `executor.shard_rows` rows (JSONL lines, Parquet record batches, HF dataset
slices), written to RUN/01_pool/parts/ one shard at a time, so memory is bounded by the shard size and a killed run
redoes only the unfinished shard (limo.streaming.tables). Ids must be unique across sources (checked on 64-bit
id hashes).

    pool:
      sources:
        - {name: math_train, path: "data:pools/math_train.jsonl"}
        - {name: numina, hf_id: AI-MO/NuminaMath-CoT, split: train, fields: {problem: problem, solution: solution}}
      invalid_rows: drop
"""

import hashlib
import json
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from limo.console import progress_bar
from limo.errors import InputError, LimoError
from limo.grading import last_boxed
from limo.paths import REPO_ROOT, data_dir
from limo.records import DROP_REASON, answer_to_str
from limo.runs import StageContext, StageResult
from limo.streaming.tables import DEFAULT_SHARD_ROWS, Parts, finalize, rows_table
from limo.text import normalize_text

OUR_FIELDS = ("id", "problem", "answer", "solution", "subject", "level")


@dataclass
class SourceConfig:
    """One problem source. Exactly one of `path` / `hf_id`."""

    name: str
    path: str | None = None
    hf_id: str | None = None
    hf_config: str | None = None
    data_files: list[str] | None = None
    split: str = "train"
    # our field -> the source's column; unmapped fields use the same name when the source has it
    fields: dict[str, str] = field(default_factory=dict)
    answer_from: str = "auto"  # auto: answer field, else last \boxed{} of solution | field | boxed
    subject: str | None = None  # constant subject / level for the whole source (when it has no column)
    level: int | None = None
    id_prefix: str | None = None  # prepended to ids (use when two sources share id values)
    limit: int | None = None  # keep a seeded random sample of this many rows
    seed: int = 0

    def __post_init__(self):
        if (self.path is None) == (self.hf_id is None):
            raise ValueError(f"source '{self.name}': give exactly one of path / hf_id")
        unknown = sorted(set(self.fields) - set(OUR_FIELDS))
        if unknown:
            raise ValueError(f"source '{self.name}': fields maps unknown column(s) {unknown}; known: {OUR_FIELDS}")
        if self.answer_from not in ("auto", "field", "boxed"):
            raise ValueError(f"source '{self.name}': answer_from must be auto, field or boxed")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"source '{self.name}': limit must be >= 1")


@dataclass
class Config:
    sources: list[SourceConfig] = field(default_factory=list)
    invalid_rows: str = "error"  # error: stop with file + line | drop: count as drop_reason "invalid_row"

    def __post_init__(self):
        if self.invalid_rows not in ("error", "drop"):
            raise ValueError(f"invalid_rows must be error or drop, got {self.invalid_rows!r}")
        if not self.sources:
            raise ValueError("pool.sources: give at least one source")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"pool.sources: source names must be unique, got {names}")


def resolve_path(spec: str) -> Path:
    """`data:x` -> data_dir()/x; a relative path is tried against the cwd, then the repository root."""
    if spec.startswith("data:"):
        return data_dir() / spec[len("data:") :]
    path = Path(spec)
    if path.is_absolute() or path.exists():
        return path
    return REPO_ROOT / path if (REPO_ROOT / path).exists() else path


# -- gold answers: the last \boxed{} uses limo.grading.last_boxed (the one extractor) ------------------------------


def parse_level(value: Any) -> int | None:
    """MATH-style levels: 3, "3", "Level 3" -> 3; "Level ?" / None -> None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    found = re.search(r"\d+", str(value))
    return int(found.group()) if found else None


# -- reading sources in shards: (line or row number, row or None, error message or None) ---------------------------

Raw = tuple[int, dict | None, str | None]


def _jsonl_rows(path: Path) -> Iterator[Raw]:
    """Rows of a JSONL file with their line numbers; a malformed line yields (line, None, why)."""
    with path.open("rb") as f:
        for line_no, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                yield line_no, None, f"not UTF-8 text (byte {e.start} of the line)"
                continue
            except json.JSONDecodeError as e:
                yield line_no, None, f"malformed JSON ({e.msg} at column {e.colno})"
                continue
            if isinstance(obj, dict):
                yield line_no, obj, None
            else:
                yield line_no, None, f"expected a JSON object, got {type(obj).__name__}"


def _table_rows(batches: Iterator[Any]) -> Iterator[Raw]:
    n = 0
    for batch in batches:
        for row in batch.to_pylist():
            n += 1
            yield n, row, None


def open_source(src: SourceConfig) -> tuple[str, Callable[[], Iterator[Raw]]]:
    """(where, a function that iterates the source's rows from the start)."""
    if src.hf_id:
        from datasets import load_dataset

        kwargs: dict[str, Any] = {"split": src.split}
        if src.data_files:
            kwargs["data_files"] = [str(resolve_path(f)) for f in src.data_files]
        where = src.hf_id if not src.data_files else f"{src.hf_id}:{','.join(kwargs['data_files'])}"
        try:
            ds = load_dataset(src.hf_id, src.hf_config, **kwargs)
        except Exception as e:  # network, missing split, bad files: one clear line
            raise InputError(f"could not load dataset ({type(e).__name__}: {e})", path=where) from e
        return where, lambda: _table_rows(ds.data.table.to_batches(max_chunksize=4096))
    path = resolve_path(src.path or "")
    if not path.exists():
        raise InputError("source file not found", path=str(path))
    if path.is_dir():
        raise InputError("expected a file, found a directory", path=str(path))
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except Exception as e:  # not Parquet, truncated
            raise InputError(f"not a readable Parquet file ({type(e).__name__}: {e})", path=str(path)) from e
        return str(path), lambda: _table_rows(pf.iter_batches(batch_size=4096))
    if path.suffix in (".jsonl", ".json"):
        return str(path), lambda: _jsonl_rows(path)
    raise InputError("unsupported file type (use .jsonl, .json or .parquet)", path=str(path))


def _column(src: SourceConfig, ours: str) -> str:
    return src.fields.get(ours, ours)


def _invalid(src: SourceConfig, where: str, line: int, why: str, invalid_rows: str, field: str | None = None) -> dict:
    if invalid_rows == "error":
        raise InputError(why, path=where, line=line, field=field)
    return {
        "id": f"{src.name}-line-{line}",
        "problem": "",
        "source": src.name,
        DROP_REASON: "invalid_row",
        "pool_file": where,
        "pool_line": line,
        "pool_error": why if field is None else f"field '{field}': {why}",
    }


def convert(src: SourceConfig, where: str, raws: list[tuple[int, Raw]], invalid_rows: str) -> tuple[list, list]:
    """(kept rows, dropped rows) of one shard; `raws` = (row index in the source, raw row)."""
    required = list(dict.fromkeys(["problem", *src.fields]))
    kept: list[dict] = []
    dropped: list[dict] = []
    for index, (line, row, error) in raws:
        if row is None:
            dropped.append(_invalid(src, where, line, error or "unreadable row", invalid_rows))
            continue
        missing = next((c for c in (_column(src, ours) for ours in required) if c not in row), None)
        if missing is not None:
            why = f"source '{src.name}' has no column '{missing}'; columns: {sorted(row)}"
            dropped.append(_invalid(src, where, line, why, invalid_rows, field=missing))
            continue
        out, reason = _to_problem_row(src, row, index)
        if reason is None:
            kept.append(out)
        else:
            dropped.append({**out, DROP_REASON: reason, "pool_line": line, "pool_file": where})
    return kept, dropped


def _to_problem_row(src: SourceConfig, row: dict, index: int) -> tuple[dict, str | None]:
    raw_id = row.get(_column(src, "id"))
    ident = str(raw_id) if raw_id is not None else f"{src.name}-{index}"
    if src.id_prefix:
        ident = f"{src.id_prefix}{ident}"
    problem = row.get(_column(src, "problem"))
    solution = row.get(_column(src, "solution"))
    solution = normalize_text(solution) if isinstance(solution, str) and solution.strip() else None
    subject = row.get(_column(src, "subject"), src.subject)
    level = parse_level(row.get(_column(src, "level"), src.level))
    out = {
        "id": ident,
        "problem": normalize_text(problem) if isinstance(problem, str) else repr(problem),
        "answer": None,
        "solution": solution,
        "source": src.name,
        "subject": str(subject) if subject is not None else None,
        "level": level,
    }
    if not isinstance(problem, str):
        return out, "problem_not_string"
    if not out["problem"]:
        return out, "empty_problem"
    answer = None
    if src.answer_from in ("auto", "field"):
        answer = answer_to_str(row.get(_column(src, "answer")))
        answer = normalize_text(answer) if answer else None
    if answer is None and src.answer_from in ("auto", "boxed") and solution:
        answer = last_boxed(solution)
    out["answer"] = answer
    if not answer:
        return out, "no_answer"
    return out, None


def _source_shards(src: SourceConfig, rows: Callable[[], Iterator[Raw]], shard_rows: int):
    """Shards of (row index, raw row); `limit` keeps a seeded sample of row indices (counted in a first pass)."""
    picked: set[int] | None = None
    if src.limit is not None:
        total = sum(1 for _ in rows())
        if src.limit < total:
            picked = set(random.Random(src.seed).sample(range(total), src.limit))
    shard: list[tuple[int, Raw]] = []
    for index, raw in enumerate(rows()):
        if picked is not None and index not in picked:
            continue
        shard.append((index, raw))
        if len(shard) == shard_rows:
            yield shard
            shard = []
    if shard:
        yield shard


def _id_hashes(ids: list[str]):
    import numpy as np

    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(i.encode(), digest_size=8).digest(), "little") for i in ids),
        dtype=np.uint64,
        count=len(ids),
    )


def _check_unique_ids(parts: Parts, n_shards: int, shard_source: list[str]) -> None:
    import numpy as np
    import pyarrow.parquet as pq

    hashes = [np.load(parts.dir / f"ids-{i:05d}.npy") for i in range(n_shards)]
    flat = np.concatenate(hashes) if hashes else np.empty(0, dtype=np.uint64)
    ordered = np.sort(flat)
    repeated = set(ordered[1:][ordered[1:] == ordered[:-1]].tolist())
    if not repeated:
        return
    first_source: dict[str, str] = {}
    for i in range(n_shards):
        for ident in pq.read_table(parts.dir / f"kept-{i:05d}.parquet", columns=["id"]).column("id").to_pylist():
            if int(_id_hashes([ident])[0]) not in repeated:
                continue
            if ident in first_source:
                raise LimoError(
                    f"pool: id '{ident}' of source '{shard_source[i]}' is also in source '{first_source[ident]}' "
                    "(or repeats in the same source); set id_prefix on a source"
                )
            first_source[ident] = shard_source[i]


def run(ds: Any, cfg: Config, ctx: StageContext) -> StageResult:
    """Read every source shard by shard into RUN/01_pool/parts/; the input table is ignored (first stage)."""
    import numpy as np

    parts = Parts(ctx.stage_dir, fresh=not ctx.resumable)
    shard_rows = ctx.executor.cfg.shard_rows if ctx.executor else DEFAULT_SHARD_ROWS
    per_source: dict[str, dict[str, int]] = {}
    infos: list[dict] = []
    shard_source: list[str] = []
    with progress_bar(len(cfg.sources), "pool: reading sources") as advance:
        for src in cfg.sources:
            where, rows = open_source(src)
            counts = {"read": 0, "kept": 0, "dropped": 0}
            for shard in _source_shards(src, rows, shard_rows):
                index = len(infos)
                info = parts.done(index)
                if info is None:
                    kept, dropped = convert(src, where, shard, cfg.invalid_rows)
                    np.save(parts.dir / f"ids-{index:05d}.npy", _id_hashes([r["id"] for r in kept]))
                    info = parts.finish(index, rows_table(kept), rows_table(dropped), {"read": len(shard)})
                infos.append(info)
                shard_source.append(src.name)
                counts["read"] += info["read"]
                counts["kept"] += info["kept"]
                counts["dropped"] += sum(info["dropped_by_reason"].values())
            if counts["read"] == 0:
                raise InputError(f"source '{src.name}' is empty (0 rows)", path=where)
            per_source[src.name] = counts
            advance(1)
    _check_unique_ids(parts, len(infos), shard_source)
    rows_out, reasons = finalize(ctx.stage_dir, infos)
    rows_read = sum(s["read"] for s in per_source.values())
    if rows_read != rows_out + sum(reasons.values()):
        raise LimoError(f"pool: read {rows_read} rows but kept {rows_out} + dropped {sum(reasons.values())}")
    # the first stage creates rows: rows_in is 0, so accounting is checked here (rows_read) instead
    stats = {"expands_rows": True, "rows_read": rows_read, "sources": per_source}
    return StageResult.from_files(ctx.stage_dir, rows_out, reasons, stats)
