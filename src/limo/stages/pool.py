"""Stage 01 `pool`: read problem sources into one table of problem rows.

Sources (in recipe order; that order is also the default dedup priority):
  - a local JSONL / JSON / Parquet file: `path: data:pools/math_train.jsonl` (`data:` = limo.paths.data_dir()),
  - an HF dataset: `hf_id: org/name` (+ `hf_config`, `split`), or a builder with files:
    `hf_id: parquet, data_files: [a.parquet]` (uses `datasets.load_dataset`).
`fields` maps our column names (id, problem, answer, solution, subject, level) to the source's column names.
Text is normalised (NFKC, whitespace); the gold answer comes from the answer field or else the last `\\boxed{}` of
the solution. Rows without a usable answer or whose problem is not a non-empty string are dropped and counted;
a source that lacks a mapped field or is empty is an InputError naming the file, line and field.

    pool:
      sources:
        - {name: math_train, path: "data:pools/math_train.jsonl"}
        - {name: numina, hf_id: AI-MO/NuminaMath-CoT, split: train, fields: {problem: problem, solution: solution}}
"""

import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Dataset

from limo.console import progress_bar
from limo.errors import InputError, LimoError
from limo.grading import last_boxed
from limo.paths import REPO_ROOT, data_dir
from limo.records import DROP_REASON, answer_to_str
from limo.runs import StageContext, StageResult
from limo.stages.common import normalize_text

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

    def __post_init__(self):
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


# -- reading sources -------------------------------------------------------------------------------------------------


def _read_local(src: SourceConfig) -> tuple[str, list[tuple[int | None, dict]]]:
    path = resolve_path(src.path or "")
    if not path.exists():
        raise InputError("source file not found", path=str(path))
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return str(path), [(i + 1, row) for i, row in enumerate(pq.read_table(path).to_pylist())]
    if path.suffix in (".jsonl", ".json"):
        from limo.io import iter_jsonl

        return str(path), list(iter_jsonl(path))
    raise InputError("unsupported file type (use .jsonl, .json or .parquet)", path=str(path))


def _read_hf(src: SourceConfig) -> tuple[str, list[tuple[int | None, dict]]]:
    from datasets import load_dataset

    kwargs: dict[str, Any] = {"split": src.split}
    if src.data_files:
        kwargs["data_files"] = [str(resolve_path(f)) for f in src.data_files]
    where = src.hf_id if not src.data_files else f"{src.hf_id}:{','.join(kwargs['data_files'])}"
    try:
        ds = load_dataset(src.hf_id, src.hf_config, **kwargs)
    except Exception as e:  # network, missing split, bad files: one clear line
        raise InputError(f"could not load dataset ({type(e).__name__}: {e})", path=where) from e
    # rows are numbered like file lines (1-based) so errors can point at them
    return where, [(i + 1, row) for i, row in enumerate(ds)]


def _column(src: SourceConfig, ours: str) -> str:
    return src.fields.get(ours, ours)


def read_source(src: SourceConfig) -> tuple[list[dict], list[dict], int]:
    """(kept rows, dropped rows, rows read) for one source."""
    where, raw = _read_hf(src) if src.hf_id else _read_local(src)
    if not raw:
        raise InputError(f"source '{src.name}' is empty (0 rows)", path=where)
    if src.limit is not None and src.limit < len(raw):
        picked = sorted(random.Random(src.seed).sample(range(len(raw)), src.limit))
        raw = [raw[i] for i in picked]
    # a mapped column must exist in every row; optional unmapped ones may be absent
    required = ["problem", *src.fields]
    kept: list[dict] = []
    dropped: list[dict] = []
    for index, (line, row) in enumerate(raw):
        for ours in dict.fromkeys(required):
            if _column(src, ours) not in row:
                raise InputError(
                    f"source '{src.name}' has no column '{_column(src, ours)}' (mapped to '{ours}'); "
                    f"columns: {sorted(row)}",
                    path=where,
                    line=line,
                    field=_column(src, ours),
                )
        out, reason = _to_problem_row(src, row, index)
        if reason is None:
            kept.append(out)
        else:
            dropped.append({**out, DROP_REASON: reason, "pool_line": line, "pool_file": where})
    return kept, dropped, len(raw)


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


def run(ds: Dataset, cfg: Config, ctx: StageContext) -> StageResult:
    """Read every source; the input table is ignored (this is the first stage)."""
    kept: list[dict] = []
    dropped: list[dict] = []
    per_source: dict[str, dict[str, int]] = {}
    seen_ids: dict[str, str] = {}
    with progress_bar(len(cfg.sources), "pool: reading sources") as advance:
        for src in cfg.sources:
            rows, drops, n_read = read_source(src)
            for r in rows:
                if r["id"] in seen_ids:
                    raise LimoError(
                        f"pool: id '{r['id']}' of source '{src.name}' is also in source '{seen_ids[r['id']]}' "
                        "(or repeats in the same source); set id_prefix on a source"
                    )
                seen_ids[r["id"]] = src.name
            kept += rows
            dropped += drops
            per_source[src.name] = {"read": n_read, "kept": len(rows), "dropped": len(drops)}
            advance(1)
    rows_read = sum(s["read"] for s in per_source.values())
    if rows_read != len(kept) + len(dropped):
        raise LimoError(f"pool: read {rows_read} rows but kept {len(kept)} + dropped {len(dropped)}")
    # the first stage creates rows: rows_in is 0, so accounting is checked here (rows_read) instead
    stats = {"expands_rows": True, "rows_read": rows_read, "sources": per_source}
    return StageResult.from_rows(kept, dropped, stats)
