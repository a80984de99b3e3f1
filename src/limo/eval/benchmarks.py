"""Benchmark specs and loading: where each benchmark lives, how its fields map, how it is prompted.

    from limo.eval.benchmarks import BENCHMARKS, load_benchmark, prompt_messages
    rows = load_benchmark("math500", limit=20)      # [{id, problem, answer, subject, level, ...}]
    rows = load_benchmark("my/problems.parquet")     # any JSONL/Parquet with problem + answer fields

Every registered benchmark has two sources: the local file `$LIMO_DATA/benchmarks/<file>` (wins when present) and
a remote `HubSource` (dataset id or builder + data files, revision, split, field mapping) loaded with
`datasets.load_dataset`. For the benchmarks whose local file came from the authors' repository, the remote source is
that same file at the same commit (GAIR-NLP/LIMO@2284c6a eval/data/<name>/test.jsonl, through the `json` builder);
math500 uses HuggingFaceH4/MATH-500. `LIMO_HUB_ROOT=DIR` points every Hub dataset id at DIR/<org>/<name> (a local
snapshot laid out like the Hub repo), which is how the tests exercise the Hub path offline.

Prompt: LIMO's system prompt plus the problem (the engine applies the model's chat template). A multiple-choice
benchmark (gpqa_diamond) appends the authors' instruction to give the letter in \\boxed{}.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from limo.errors import InputError, LimoError
from limo.paths import data_dir
from limo.records import LIMO_SYSTEM_PROMPT, answer_to_str, chat_messages

LIMO_COMMIT = "2284c6a0e6653aa8894bd12fdecc1212ba706c3a"
_LIMO_RAW = f"https://raw.githubusercontent.com/GAIR-NLP/LIMO/{LIMO_COMMIT}/eval/data"
# GAIR-NLP/LIMO eval/data/gpqa/test.jsonl@2284c6a ends every GPQA question with this instruction.
CHOICE_INSTRUCTION = (
    "Please reason step-by-step and put your choice letter without any other text with \\boxed{} in the end."
)


@dataclass(frozen=True)
class HubSource:
    """A `datasets.load_dataset` source: `dataset` is a Hub id (org/name) or a builder ("json") with `data_files`."""

    dataset: str
    split: str = "test"
    revision: str | None = None
    config: str | tuple[str, ...] | None = None  # several configs are loaded and concatenated in order
    data_files: str | None = None
    fields: dict[str, str] = field(default_factory=dict)  # our field -> source field

    def describe(self) -> str:
        where = self.data_files or self.dataset
        return f"{where}{'@' + self.revision if self.revision else ''}:{self.split}"


def _limo_file(name: str, **fields: str) -> HubSource:
    return HubSource("json", split="train", data_files=f"{_LIMO_RAW}/{name}/test.jsonl", fields=fields)


@dataclass(frozen=True)
class BenchmarkSpec:
    """Where a benchmark comes from and how its fields map onto id/problem/answer/subject/level."""

    name: str
    file: str | None = None  # relative to $LIMO_DATA/benchmarks (or an absolute path)
    hub: HubSource | None = None
    fields: dict[str, str] = field(default_factory=dict)  # our field -> local file field
    choice_field: str | None = None  # multiple-choice letter used as the gold when present (gaokao)
    choices_field: str | None = None  # option texts: the benchmark is multiple choice (gpqa_diamond)
    judge: bool = False  # text golds: `--judge` grades the items whose gold is not mathematical
    language: str = "en"

    def source_field(self, ours: str) -> str:
        return self.fields.get(ours, ours)


BENCHMARKS: dict[str, BenchmarkSpec] = {
    "aime24": BenchmarkSpec("aime24", file="aime24.jsonl", hub=_limo_file("aime")),
    # not in the LIMO paper; AIME 2025 from opencompass/AIME2025 (the local file is a copy of it, see data README)
    "aime25": BenchmarkSpec(
        "aime25",
        file="aime25.jsonl",
        hub=HubSource("opencompass/AIME2025", config=("AIME2025-I", "AIME2025-II"), fields={"problem": "question"}),
    ),
    "amc23": BenchmarkSpec("amc23", file="amc23.jsonl", hub=_limo_file("amc")),
    "math500": BenchmarkSpec(
        "math500", file="math500.jsonl", hub=HubSource("HuggingFaceH4/MATH-500", fields={"id": "unique_id"})
    ),
    "minerva": BenchmarkSpec("minerva", file="minerva.jsonl", hub=_limo_file("minerva", problem="question")),
    "olympiadbench": BenchmarkSpec(
        "olympiadbench", file="olympiadbench.jsonl", hub=_limo_file("olympiadbench", problem="question")
    ),
    "gaokao": BenchmarkSpec(
        "gaokao",
        file="gaokao.jsonl",
        hub=_limo_file("gaokao", problem="question", id="idx"),
        choice_field="choice_answer",
        judge=True,
        language="zh",
    ),
    "kaoyan": BenchmarkSpec("kaoyan", file="kaoyan.jsonl", hub=_limo_file("kaoyan"), judge=True, language="zh"),
    "cn_math_2024": BenchmarkSpec("cn_math_2024", file="cn_math_2024.jsonl", hub=_limo_file("cn_math_2024")),
    "grade_school_math": BenchmarkSpec(
        "grade_school_math",
        file="grade_school_math.jsonl",
        hub=_limo_file("grade_school_math"),
        judge=True,
        language="zh",
    ),
    # GAIR-NLP/LIMO eval/data/gpqa/test.jsonl@2284c6a; the authors' copy always has the correct option at A and no
    # separate option list, so the remote source gives letter-only items (the local file has shuffled options).
    "gpqa_diamond": BenchmarkSpec(
        "gpqa_diamond", file="gpqa_diamond.jsonl", hub=_limo_file("gpqa", problem="question"), choices_field="choices"
    ),
}

# The LIMO paper's benchmark average (v1 and v3 Table 1: ten benchmarks).
PAPER_AVERAGE = [
    "aime24",
    "math500",
    "amc23",
    "olympiadbench",
    "cn_math_2024",
    "gaokao",
    "kaoyan",
    "grade_school_math",
    "minerva",
    "gpqa_diamond",
]


def prompt_messages(problem: str, multiple_choice: bool = False) -> list[dict[str, str]]:
    """LIMO's prompt: its system prompt plus the problem as the user turn (plus the letter instruction for MC)."""
    if multiple_choice:
        problem = f"{problem.rstrip()}\n\n{CHOICE_INSTRUCTION}"
    return chat_messages(problem, system=LIMO_SYSTEM_PROMPT)


def _hub_dataset_path(dataset: str) -> str:
    root = os.environ.get("LIMO_HUB_ROOT")
    if root and "/" in dataset:
        return str(Path(root) / dataset)
    return dataset


def _raw_rows(spec: BenchmarkSpec) -> tuple[list[dict[str, Any]], str, bool]:
    """Source rows, a display name for errors, and whether they came from the Hub source."""
    from limo.io import read_table

    if spec.file is not None:
        path = Path(spec.file) if Path(spec.file).is_absolute() else data_dir() / "benchmarks" / spec.file
        if path.exists() or spec.hub is None:
            if not path.exists():
                raise InputError(f"benchmark {spec.name!r}: file not found and no Hub source", path=str(path))
            return read_table(path), str(path), False
    if spec.hub is None:
        raise LimoError(f"benchmark {spec.name!r} has neither a local file nor a Hub source")
    hub = spec.hub
    import datasets

    configs = hub.config if isinstance(hub.config, tuple) else (hub.config,)
    try:
        rows = []
        for config in configs:
            ds = datasets.load_dataset(
                _hub_dataset_path(hub.dataset),
                config,
                split=hub.split,
                revision=hub.revision,
                data_files=hub.data_files,
            )
            rows.extend(ds.to_list())
    except Exception as e:  # offline, unknown id, bad files: say which benchmark and what to do
        local = data_dir() / "benchmarks" / (spec.file or f"{spec.name}.jsonl")
        raise LimoError(
            f"benchmark {spec.name!r}: no local file {local} and the Hub source {hub.describe()} did not load "
            f"({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}); set LIMO_DATA to a folder with "
            f"benchmarks/{spec.file}, or allow network access (HF_HUB_OFFLINE unset) so `datasets` can download it"
        ) from e
    return rows, hub.describe(), True


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
        if spec.choices_field and problem.rstrip().endswith(CHOICE_INSTRUCTION):
            problem = problem.rstrip()[: -len(CHOICE_INSTRUCTION)].rstrip()  # we add the instruction ourselves
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
        if spec.choices_field:
            choices = src.get(spec.choices_field)
            if choices is not None:
                if not (isinstance(choices, list) and all(isinstance(c, str) for c in choices)):
                    raise InputError(
                        "expected a list of option texts", path=where, line=line, field=spec.choices_field
                    )
                row["choices"] = choices
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
        return BenchmarkSpec(name=path.stem, file=str(path.resolve()), choices_field="choices")
    raise LimoError(f"unknown benchmark {name_or_path!r}; known: {', '.join(BENCHMARKS)} (or a .jsonl/.parquet path)")


def load_benchmark(name_or_path: str, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows with at least id, problem, answer (str), subject, level, source; the first `limit` when given."""
    import dataclasses

    spec = resolve(name_or_path)
    raw, where, from_hub = _raw_rows(spec)
    if limit is not None:
        raw = raw[:limit]
    if from_hub and spec.hub is not None:
        spec = dataclasses.replace(spec, fields=dict(spec.hub.fields))
    return rows_from_source(raw, spec, where)
