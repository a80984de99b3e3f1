"""Benchmarks load from their Hub source when the local file is missing: a local directory laid out like the Hub
dataset repo (LIMO_HUB_ROOT/<org>/<name>/test.jsonl) gives the same rows as the local file; with neither, one error
that says what to do.

.venv/bin/pytest tests/eval/test_hub_source.py
"""

import json

import pytest

from limo.errors import LimoError
from limo.eval.benchmarks import BENCHMARKS, load_benchmark


def test_math500_from_a_hub_layout_directory_equals_the_local_file(shared_data, tmp_path, monkeypatch):
    local = load_benchmark("math500")
    raw = [json.loads(line) for line in (shared_data / "benchmarks" / "math500.jsonl").open()]
    repo = tmp_path / "hub" / "HuggingFaceH4" / "MATH-500"  # the Hub repo's layout: one test.jsonl at its root
    repo.mkdir(parents=True)
    with (repo / "test.jsonl").open("w") as f:
        for r in raw:  # the Hub schema: unique_id instead of id, no source column
            row = {"problem": r["problem"], "solution": r["solution"], "answer": r["answer"],
                   "subject": r["subject"], "level": r["level"], "unique_id": r["id"]}  # fmt: skip
            f.write(json.dumps(row) + "\n")
    monkeypatch.setenv("LIMO_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("LIMO_HUB_ROOT", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    from_hub = load_benchmark("math500")
    assert len(from_hub) == 500 and from_hub == local
    assert BENCHMARKS["math500"].hub.dataset == "HuggingFaceH4/MATH-500"


def test_neither_local_file_nor_hub_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("LIMO_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("LIMO_HUB_ROOT", str(tmp_path / "empty-hub"))
    with pytest.raises(LimoError) as e:
        load_benchmark("math500")
    message = str(e.value)
    assert "math500" in message and "no-data/benchmarks/math500.jsonl" in message
    assert "set LIMO_DATA" in message and "allow network access" in message and "HuggingFaceH4/MATH-500" in message
    assert "\n" not in message
