"""Benchmark specs and loading: where each benchmark lives, how its fields map, how it is prompted and sampled.

    from limo.eval.benchmarks import BENCHMARKS, load_benchmark, prompt_messages
    rows = load_benchmark("math500", limit=20)      # [{id, problem, answer, subject, level, ...}]
    rows = load_benchmark("my/problems.parquet")     # any JSONL/Parquet with problem + answer fields

A spec loads from a local file under `$LIMO_DATA/benchmarks/` when it exists, else from an HF dataset
(`datasets.load_dataset(hf_id, hf_config, split=..., data_files=...)`) with a field mapping.
Prompt: LIMO's system prompt plus the problem as chat messages (the engine applies the model's chat template).
Sampling protocols: "greedy" (pass@1, the default) and "paper-sampled" (16 samples at temperature 0.7, which the
LIMO paper uses for AIME24, AMC23 and CHMath).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from limo.errors import InputError, LimoError
from limo.paths import data_dir
from limo.records import LIMO_SYSTEM_PROMPT, answer_to_str, chat_messages


@dataclass(frozen=True)
class Protocol:
    """How many samples per problem and how to decode them. The headline metric is pass@1 (n=1) or avg@n."""

    name: str
    n: int
    temperature: float
    top_p: float = 1.0


PROTOCOLS: dict[str, Protocol] = {
    "greedy": Protocol("greedy", n=1, temperature=0.0),
    # LIMO §4 (evaluation): AIME24, AMC23 and CHMath are sampled 16 times at temperature 0.7; report the mean.
    "paper-sampled": Protocol("paper-sampled", n=16, temperature=0.7),
}

# LIMO §4: maximum output length 32768 tokens.
PAPER_MAX_TOKENS = 32768


@dataclass(frozen=True)
class BenchmarkSpec:
    """Where a benchmark comes from and how its fields map onto id/problem/answer/subject/level."""

    name: str
    file: str | None = None  # relative to $LIMO_DATA/benchmarks
    hf_id: str | None = None  # an HF hub id, or a builder such as "json"/"parquet" together with data_files
    hf_config: str | None = None
    split: str = "test"
    data_files: str | None = None
    fields: dict[str, str] = field(default_factory=dict)  # our field -> source field (for every source)
    hf_fields: dict[str, str] = field(default_factory=dict)  # extra mapping used only when loading from HF
    choice_field: str | None = None  # multiple-choice letter, used as the gold when present (gaokao)
    paper_protocol: str = "greedy"  # the protocol the LIMO paper reports for this benchmark
    language: str = "en"

    def source_field(self, ours: str) -> str:
        return self.fields.get(ours, ours)


BENCHMARKS: dict[str, BenchmarkSpec] = {
    "aime24": BenchmarkSpec("aime24", file="aime24.jsonl", paper_protocol="paper-sampled"),
    "aime25": BenchmarkSpec("aime25", file="aime25.jsonl", paper_protocol="paper-sampled"),
    "amc23": BenchmarkSpec("amc23", file="amc23.jsonl", paper_protocol="paper-sampled"),
    "math500": BenchmarkSpec(
        "math500",
        file="math500.jsonl",
        hf_id="HuggingFaceH4/MATH-500",
        hf_fields={"id": "unique_id"},
    ),
    "minerva": BenchmarkSpec("minerva", file="minerva.jsonl"),
    "olympiadbench": BenchmarkSpec("olympiadbench", file="olympiadbench.jsonl"),
    "gaokao": BenchmarkSpec("gaokao", file="gaokao.jsonl", choice_field="choice_answer", language="zh"),
    "kaoyan": BenchmarkSpec("kaoyan", file="kaoyan.jsonl", language="zh"),
    "cn_math_2024": BenchmarkSpec("cn_math_2024", file="cn_math_2024.jsonl", paper_protocol="paper-sampled"),
    "grade_school_math": BenchmarkSpec("grade_school_math", file="grade_school_math.jsonl", language="zh"),
}


def prompt_messages(problem: str) -> list[dict[str, str]]:
    """LIMO's prompt: its system prompt plus the problem as the user turn."""
    return chat_messages(problem, system=LIMO_SYSTEM_PROMPT)


def _raw_rows(spec: BenchmarkSpec) -> tuple[list[dict[str, Any]], str, bool]:
    """Source rows, a display name for errors, and whether they came from HF datasets."""
    from limo.io import read_table

    if spec.file is not None:
        path = data_dir() / "benchmarks" / spec.file
        if path.exists() or spec.hf_id is None:
            return read_table(path), str(path), False
    if spec.hf_id is None:
        raise LimoError(f"benchmark {spec.name!r} has neither a local file nor an HF dataset id")
    import datasets

    try:
        ds = datasets.load_dataset(spec.hf_id, spec.hf_config, split=spec.split, data_files=spec.data_files)
    except Exception as e:  # offline, unknown id, bad files: say which benchmark and source
        raise LimoError(f"benchmark {spec.name!r}: cannot load HF dataset {spec.hf_id!r} ({e})") from e
    return ds.to_list(), f"{spec.hf_id}:{spec.split}", True


def _level(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip().removeprefix("Level").strip()
    return int(text) if text.isdigit() else None


def rows_from_source(raw: list[dict[str, Any]], spec: BenchmarkSpec, where: str) -> list[dict[str, Any]]:
    """Map source rows onto the benchmark schema; a row without problem/answer is an InputError naming it."""
    rows = []
    for i, src in enumerate(raw):
        line = i + 1
        problem = src.get(spec.source_field("problem"))
        if not isinstance(problem, str) or not problem.strip():
            raise InputError("missing or empty problem", path=where, line=line, field=spec.source_field("problem"))
        gold = None
        if spec.choice_field and src.get(spec.choice_field):
            gold = answer_to_str(src[spec.choice_field])  # gaokao: the option letter for multiple-choice items
        if gold is None:
            gold = answer_to_str(src.get(spec.source_field("answer")))
        if gold is None:
            raise InputError("missing answer", path=where, line=line, field=spec.source_field("answer"))
        rid = src.get(spec.source_field("id"))
        subject = src.get(spec.source_field("subject"))
        row = {
            "id": str(rid) if rid is not None else f"{spec.name}-{i}",
            "problem": problem,
            "answer": gold,
            "subject": str(subject) if subject not in (None, "") else None,
            "level": _level(src.get(spec.source_field("level"))),
            "source": spec.name,
        }
        if spec.choice_field and src.get(spec.choice_field):
            row["answer_text"] = answer_to_str(src.get(spec.source_field("answer")))
        rows.append(row)
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        for i, r in enumerate(rows):
            if r["id"] in seen:
                raise InputError(f"duplicate id {r['id']!r}", path=where, line=i + 1, field="id")
            seen.add(r["id"])
    return rows


def resolve(name_or_path: str) -> BenchmarkSpec:
    """The registered spec, or an ad-hoc spec for a .jsonl/.json/.parquet path with problem and answer fields."""
    if name_or_path in BENCHMARKS:
        return BENCHMARKS[name_or_path]
    path = Path(name_or_path)
    if path.suffix in (".jsonl", ".json", ".parquet"):
        if not path.exists():
            raise InputError("benchmark file not found", path=str(path))
        return BenchmarkSpec(name=path.stem, file=str(path.resolve()))
    raise LimoError(f"unknown benchmark {name_or_path!r}; known: {', '.join(BENCHMARKS)} (or a .jsonl/.parquet path)")


def load_benchmark(name_or_path: str, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows with at least id, problem, answer (str), subject, level, source; the first `limit` when given."""
    spec = resolve(name_or_path)
    raw, where, from_hf = _raw_rows(spec)
    if limit is not None:
        raw = raw[:limit]
    if from_hf and spec.hf_fields:
        spec = dataclasses.replace(spec, fields={**spec.fields, **spec.hf_fields})
    return rows_from_source(raw, spec, where)
