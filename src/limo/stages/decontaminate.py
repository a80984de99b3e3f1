"""Stage 03 `decontaminate`: drop pool problems that appear in an evaluation benchmark.

On by default, against every benchmark registered in `limo.eval.benchmarks.BENCHMARKS` (or, where that module
is missing, every file in data_dir()/benchmarks/), plus `extra_files`. A pool row matches a benchmark item when
  - exact:  identical after NFKC, lower-casing and removing whitespace,
  - ngram:  they share a word `ngram`-gram (8, as s1 and open-r1 do); n-grams found in more than
            `max_ngram_items` benchmark items are boilerplate ("express your answer as a common fraction ...")
            and are ignored,
  - fuzzy:  character similarity >= `fuzzy_threshold` on candidates sharing `candidate_ngram`-grams
            (catches near-verbatim copies whose formatting breaks the 8-grams): rapidfuzz's `fuzz.ratio`
            (normalised Indel similarity, 2 * LCS / total length), which replaced difflib's SequenceMatcher.
RUN/03_decontaminate/contamination_report.json and .md list, per benchmark, the matched pool rows, the items
they match, the match type and the scores. Matched rows are dropped with drop_reason "contaminated".

Streaming: two per-batch passes on the local or Ray executor (benchmark n-gram counts for the boilerplate rule,
then the matches), the input filtered shard by shard; the driver holds the benchmark index, one count per
benchmark n-gram and the matched rows.

    decontaminate: {benchmarks: null, extra_files: [my_eval.jsonl], ngram: 8, fuzzy_threshold: 0.9}
"""

import json
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from limo.errors import InputError
from limo.io import atomic_write_text, read_table, write_json
from limo.paths import data_dir
from limo.records import DROP_REASON
from limo.runs import StageContext, StageResult
from limo.streaming.executors import LocalExecutor, read_columns
from limo.streaming.tables import TableSource, finalize, rows_table, run_sharded
from limo.text import exact_key, tokens


@dataclass
class Config:
    enabled: bool = True
    benchmarks: list[str] | None = None  # None = every registered benchmark
    extra_files: list[str] = field(default_factory=list)
    ngram: int = 8  # s1 / open-r1 decontamination: 8-gram overlap
    max_ngram_items: int = 3  # an n-gram in more benchmark items than this is boilerplate ...
    max_ngram_pool_rows: int = 10  # ... and so is one in more pool rows than this
    candidate_ngram: int = 4
    fuzzy_threshold: float = 0.9  # character similarity (rapidfuzz fuzz.ratio / 100): near-verbatim copies
    drop: bool = True  # False: report only

    def __post_init__(self):
        if self.ngram < 2 or self.candidate_ngram < 2:
            raise ValueError("ngram and candidate_ngram must be >= 2")
        if not 0 < self.fuzzy_threshold <= 1:
            raise ValueError("fuzzy_threshold must be in (0, 1]")


def load_benchmarks(cfg: Config) -> dict[str, list[dict]]:
    """{benchmark name: rows with id, problem}."""
    out: dict[str, list[dict]] = {}
    try:
        from limo.eval.benchmarks import BENCHMARKS, load_benchmark
    except ImportError:
        BENCHMARKS, load_benchmark = None, None
    if BENCHMARKS is not None:
        for name in cfg.benchmarks or list(BENCHMARKS):
            out[name] = load_benchmark(name)
    else:
        files = sorted((data_dir() / "benchmarks").glob("*.jsonl"))
        wanted = set(cfg.benchmarks) if cfg.benchmarks else None
        for path in files:
            if wanted is None or path.stem in wanted:
                out[path.stem] = read_table(path)
        missing = (wanted or set()) - set(out)
        if missing:
            raise InputError(f"unknown benchmark(s) {sorted(missing)}; found {sorted(p.stem for p in files)}")
    for spec in cfg.extra_files:
        from limo.stages.pool import resolve_path

        path = resolve_path(spec)
        rows = read_table(path)
        for i, r in enumerate(rows, start=1):
            if not isinstance(r.get("problem"), str):
                raise InputError("expected a string", path=str(path), line=i, field="problem")
        out[path.stem] = rows
    return out


def _grams(toks: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)}


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text).lower()).strip()


def _ratio(a: str, b: str) -> float:
    """Character similarity in [0, 1]; below 0.5 reported as 0 (not worth computing exactly)."""
    from rapidfuzz import fuzz

    return fuzz.ratio(a, b, score_cutoff=50) / 100


class BenchmarkIndex:
    """n-gram indexes over every benchmark item."""

    def __init__(self, benches: dict[str, list[dict]], cfg: Config):
        self.cfg = cfg
        self.items: list[tuple[str, dict]] = [(name, row) for name, rows in benches.items() for row in rows]
        self.flat = [_flat(row["problem"]) for _, row in self.items]
        self.exact: dict[str, list[int]] = defaultdict(list)
        self.ngrams: dict[tuple, list[int]] = defaultdict(list)
        self.cand: dict[tuple, list[int]] = defaultdict(list)
        self.cand_sizes: list[int] = []
        for k, (_, row) in enumerate(self.items):
            self.exact[exact_key(row["problem"])].append(k)
            toks = tokens(row["problem"])
            for g in _grams(toks, cfg.ngram):
                self.ngrams[g].append(k)
            cg = _grams(toks, cfg.candidate_ngram)
            self.cand_sizes.append(len(cg))
            for g in cg:
                self.cand[g].append(k)
        self.ngrams = {g: ks for g, ks in self.ngrams.items() if len(ks) <= cfg.max_ngram_items}

    def gram_counts(self, problems: list[str]) -> Counter:
        """How many of `problems` contain each benchmark n-gram (the global state of the boilerplate pass)."""
        df: Counter = Counter()
        for text in problems:
            df.update(g for g in _grams(tokens(text), self.cfg.ngram) if g in self.ngrams)
        return df

    def drop_boilerplate(self, df: Counter) -> int:
        """Forget benchmark n-grams found in more than `max_ngram_pool_rows` pool problems; returns how many."""
        common = [g for g, c in df.items() if c > self.cfg.max_ngram_pool_rows]
        for g in common:
            del self.ngrams[g]
        return len(common)

    def matches(self, problem: str) -> list[dict]:
        """Every benchmark item this problem matches, with match type and scores."""
        cfg = self.cfg
        toks = tokens(problem)
        found: dict[int, dict] = {}
        for k in self.exact.get(exact_key(problem), []):
            found[k] = {"match": "exact", "ngram_overlap": 1.0, "char_ratio": 1.0}
        grams = _grams(toks, cfg.ngram)
        shared: dict[int, int] = defaultdict(int)
        for g in grams:
            for k in self.ngrams.get(g, ()):
                shared[k] += 1
        cgrams = _grams(toks, cfg.candidate_ngram)
        cshared: dict[int, int] = defaultdict(int)
        for g in cgrams:
            for k in self.cand.get(g, ()):
                cshared[k] += 1
        flat = None
        fuzzy_cands = {k for k, c in cshared.items() if c / max(1, min(len(cgrams), self.cand_sizes[k])) >= 0.3}
        for k in set(shared) | fuzzy_cands:
            if k in found:
                continue
            flat = flat if flat is not None else _flat(problem)
            ratio = round(_ratio(flat, self.flat[k]), 4)
            overlap = round(shared.get(k, 0) / max(1, len(grams)), 4)
            if ratio >= cfg.fuzzy_threshold:
                found[k] = {"match": "fuzzy", "ngram_overlap": overlap, "char_ratio": ratio}
            elif k in shared:
                found[k] = {"match": "ngram", "ngram_overlap": overlap, "char_ratio": ratio}
        return [
            {"benchmark": self.items[k][0], "benchmark_id": str(self.items[k][1].get("id")), **m}
            for k, m in sorted(found.items())
        ]


def write_report(stage_dir: Path, benches: dict[str, list[dict]], hits: list[tuple[dict, list[dict]]], cfg: Config):
    per: dict[str, dict] = {
        name: {"items": len(rows), "matched_items": 0, "matched_pool_rows": 0, "by_match": {}, "matches": []}
        for name, rows in benches.items()
    }
    for row, matches in hits:
        for m in matches:
            per[m["benchmark"]]["matches"].append(
                {
                    "pool_id": row["id"],
                    "pool_source": row["source"],
                    "benchmark_id": m["benchmark_id"],
                    "match": m["match"],
                    "ngram_overlap": m["ngram_overlap"],
                    "char_ratio": m["char_ratio"],
                }
            )
    for entry in per.values():
        entry["matched_items"] = len({m["benchmark_id"] for m in entry["matches"]})
        entry["matched_pool_rows"] = len({m["pool_id"] for m in entry["matches"]})
        for m in entry["matches"]:
            entry["by_match"][m["match"]] = entry["by_match"].get(m["match"], 0) + 1
    report = {
        "config": {
            "ngram": cfg.ngram,
            "max_ngram_items": cfg.max_ngram_items,
            "max_ngram_pool_rows": cfg.max_ngram_pool_rows,
            "candidate_ngram": cfg.candidate_ngram,
            "fuzzy_threshold": cfg.fuzzy_threshold,
            "drop": cfg.drop,
        },
        "pool_rows_matched": len(hits),
        "benchmarks": per,
    }
    write_json(stage_dir / "contamination_report.json", report)
    lines = [
        "# Contamination report",
        "",
        f"{len(hits)} pool rows match a benchmark item ({cfg.ngram}-gram overlap, exact, or fuzzy "
        f"char ratio >= {cfg.fuzzy_threshold}). Dropped: {cfg.drop and bool(hits)}.",
        "",
        "| benchmark | items | matched items | matched pool rows | by match type |",
        "|---|---|---|---|---|",
    ]
    for name, e in per.items():
        lines.append(f"| {name} | {e['items']} | {e['matched_items']} | {e['matched_pool_rows']} | {e['by_match']} |")
    for name, e in per.items():
        if not e["matches"]:
            continue
        lines += [
            "",
            f"## {name}",
            "",
            "| pool row | source | benchmark item | match | 8-gram overlap | char ratio |",
            "|---|---|---|---|---|---|",
        ]
        for m in e["matches"]:
            lines.append(
                f"| {m['pool_id']} | {m['pool_source']} | {m['benchmark_id']} | {m['match']} | "
                f"{m['ngram_overlap']} | {m['char_ratio']} |"
            )
    atomic_write_text(stage_dir / "contamination_report.md", "\n".join(lines) + "\n")
    return report


class GramCounts:
    """Per-batch step of the boilerplate pass: (n-gram, rows containing it) for benchmark n-grams."""

    def __init__(self, index: BenchmarkIndex):
        self.index = index

    def __call__(self, table: pa.Table) -> pa.Table:
        df = self.index.gram_counts(table.column("problem").to_pylist())
        return pa.table({"gram": [" ".join(g) for g in df], "rows": list(df.values())})


class Matches:
    """Per-batch step of the matching pass: each row's benchmark matches as JSON (null when none)."""

    def __init__(self, index: BenchmarkIndex):
        self.index = index

    def __call__(self, table: pa.Table) -> pa.Table:
        out = []
        for problem in table.column("problem").to_pylist():
            found = self.index.matches(problem)
            out.append(json.dumps(found) if found else None)
        return pa.table({"matches": pa.array(out, pa.string())})


def run(source, cfg: Config, ctx: StageContext) -> StageResult:
    """Two map passes (boilerplate n-gram counts, then matches; local or Ray), then the input is filtered shard by
    shard. Global state: the benchmark index and one count per benchmark n-gram."""
    source = TableSource.of(source)
    executor = ctx.executor or LocalExecutor()
    if not cfg.enabled:
        infos = run_sharded(source, ctx.stage_dir, lambda t, _: (t, rows_table([]), {}), fresh=not ctx.resumable)
        rows_out, reasons = finalize(ctx.stage_dir, infos)
        return StageResult.from_files(ctx.stage_dir, rows_out, reasons, {"enabled": False})
    benches = load_benchmarks(cfg)
    index = BenchmarkIndex(benches, cfg)
    parts = ctx.stage_dir / "parts"
    df: Counter = Counter()
    for f in executor.map(source, GramCounts(index), parts / "gram_counts", ctx.resumable):
        t = pq.read_table(f)
        for gram, rows in zip(t.column("gram").to_pylist(), t.column("rows").to_pylist(), strict=True):
            df[tuple(gram.split(" "))] += rows
    boilerplate = index.drop_boilerplate(df)
    del df
    found = read_columns(executor.map(source, Matches(index), parts / "matches", ctx.resumable), ["matches"])
    matches = found.column("matches")
    hits: list[tuple[dict, list[dict]]] = []

    def split(table: pa.Table, first: int) -> tuple[pa.Table, pa.Table, dict]:
        mine = matches.slice(first, table.num_rows).to_pylist()
        hit = np.asarray([m is not None for m in mine], dtype=bool)
        for i in np.nonzero(hit)[0]:
            row = {"id": table.column("id")[int(i)].as_py(), "source": table.column("source")[int(i)].as_py()}
            hits.append((row, json.loads(mine[i])))
        if not cfg.drop:
            return table, rows_table([]), {}
        dropped = table.filter(pa.array(hit))
        tags = [
            "; ".join(f"{m['benchmark']}:{m['benchmark_id']}({m['match']})" for m in json.loads(mine[i])[:5])
            for i in np.nonzero(hit)[0]
        ]
        dropped = dropped.append_column("contaminated_with", pa.array(tags, pa.string()))
        dropped = dropped.append_column(DROP_REASON, pa.array(["contaminated"] * len(tags), pa.string()))
        return table.filter(pa.array(~hit)), dropped, {}

    # the report needs every hit, so the split pass is redone in full (it only filters; the matching is resumed)
    infos = run_sharded(source, ctx.stage_dir, split, executor.cfg.shard_rows, executor.cfg.batch_rows, fresh=True)
    rows_out, reasons = finalize(ctx.stage_dir, infos)
    report = write_report(ctx.stage_dir, benches, hits, cfg)
    summary = {name: e["matched_pool_rows"] for name, e in report["benchmarks"].items() if e["matched_pool_rows"]}
    stats = {
        "benchmarks": len(benches),
        "boilerplate_ngrams": boilerplate,
        "matched_pool_rows_by_benchmark": summary,
        "executor": executor.describe(),
    }
    return StageResult.from_files(ctx.stage_dir, rows_out, reasons, stats)
