"""Shared bits for the candidate-stage tests: a StageContext in a tmp dir and real problem rows."""

from pathlib import Path

from datasets import Dataset

from limo.io import read_jsonl
from limo.runs import StageContext


def context(tmp_path: Path, name: str) -> StageContext:
    stage_dir = tmp_path / name
    stage_dir.mkdir(parents=True, exist_ok=True)
    return StageContext(run_dir=tmp_path, stage_dir=stage_dir, generation_cache=tmp_path / "gen.sqlite")


def math_train_rows(shared_data: Path, n: int) -> list[dict]:
    """The first `n` MATH train problems with an answer, as problem rows (core fields only)."""
    rows = []
    for r in read_jsonl(shared_data / "pools" / "math_train.jsonl"):
        if r["answer"] is None:
            continue
        rows.append({k: r[k] for k in ("id", "problem", "answer", "solution", "source", "subject", "level")})
        if len(rows) == n:
            break
    return rows


def as_dataset(rows: list[dict]) -> Dataset:
    return Dataset.from_list(rows)
