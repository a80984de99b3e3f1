"""Benchmark specs: every registered benchmark loads from the shared data; ad-hoc files; HF datasets code path.

.venv/bin/pytest tests/eval/test_benchmarks.py
"""

import json

import pytest

from limo.errors import InputError, LimoError
from limo.eval.benchmarks import (
    BENCHMARKS,
    PAPER_AVERAGE,
    BenchmarkSpec,
    HubSource,
    load_benchmark,
    prompt_messages,
    rows_from_source,
)
from limo.records import LIMO_SYSTEM_PROMPT

EXPECTED_ROWS = {
    "aime24": 30, "aime25": 30, "amc23": 40, "math500": 500, "minerva": 272, "olympiadbench": 675,
    "gaokao": 79, "kaoyan": 199, "cn_math_2024": 30, "grade_school_math": 210, "gpqa_diamond": 198,
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_every_benchmark_loads(shared_data, name):
    rows = load_benchmark(name)
    assert len(rows) == EXPECTED_ROWS[name]
    for r in rows:
        assert isinstance(r["id"], str) and r["problem"].strip()
        assert isinstance(r["answer"], str) and r["answer"]
        assert r["subject"] is None or isinstance(r["subject"], str)
        assert r["level"] is None or isinstance(r["level"], int)
    assert len({r["id"] for r in rows}) == len(rows)


def test_limit_and_math500_fields(shared_data):
    rows = load_benchmark("math500", limit=5)
    assert len(rows) == 5
    assert (
        rows[0]["id"] == "test/precalculus/807.json" and rows[0]["subject"] == "Precalculus" and rows[0]["level"] == 2
    )


def test_gaokao_uses_choice_letter_for_multiple_choice(shared_data):
    rows = load_benchmark("gaokao")
    raw = [json.loads(line) for line in (shared_data / "benchmarks" / "gaokao.jsonl").open()]
    mc = [(r, s) for r, s in zip(rows, raw, strict=True) if s.get("choice_answer")]
    assert len(mc) == 53
    assert all(r["answer"] == s["choice_answer"] and r["answer_text"] == s["answer"] for r, s in mc)
    fill_in = [r for r, s in zip(rows, raw, strict=True) if not s.get("choice_answer")]
    assert all(len(r["answer"]) >= 1 and "answer_text" not in r for r in fill_in)


def test_prompt_is_limo_system_prompt_plus_problem():
    msgs = prompt_messages("What is 1+1?")
    assert msgs == [{"role": "system", "content": LIMO_SYSTEM_PROMPT}, {"role": "user", "content": "What is 1+1?"}]
    assert "boxed" in LIMO_SYSTEM_PROMPT


def test_every_benchmark_has_a_hub_source_and_the_paper_average_is_registered():
    for name, spec in BENCHMARKS.items():
        assert spec.file and spec.hub is not None, name
        assert spec.hub.dataset and spec.hub.split, name
        assert spec.hub.data_files is None or "2284c6a0e6653aa8894bd12fdecc1212ba706c3a" in spec.hub.data_files
    assert len(PAPER_AVERAGE) == 10 and set(PAPER_AVERAGE) <= set(BENCHMARKS)


def test_gpqa_rows_carry_options_and_the_prompt_asks_for_the_letter(shared_data):
    rows = load_benchmark("gpqa_diamond", limit=3)
    assert all(len(r["choices"]) == 4 and r["answer"] in "ABCD" for r in rows)
    msgs = prompt_messages(rows[0]["problem"], multiple_choice=True)
    assert msgs[1]["content"].startswith(rows[0]["problem"]) and "choice letter" in msgs[1]["content"]
    assert "\\boxed{}" in msgs[1]["content"]


def test_any_jsonl_or_parquet_path(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text('{"problem": "1+1?", "answer": 2}\n{"problem": "2+2?", "answer": "4", "id": "b"}\n')
    rows = load_benchmark(str(path))
    assert [r["answer"] for r in rows] == ["2", "4"]
    assert [r["id"] for r in rows] == ["mine-0", "b"]
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([{"problem": "3+3?", "answer": "6", "level": 3}]), tmp_path / "p.parquet")
    rows = load_benchmark(str(tmp_path / "p.parquet"))
    assert rows[0]["answer"] == "6" and rows[0]["level"] == 3


def test_bad_benchmark_file_names_line_and_field(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"problem": "ok", "answer": "1"}\n{"problem": "no answer"}\n')
    with pytest.raises(InputError) as e:
        load_benchmark(str(path))
    assert "line 2" in str(e.value) and "answer" in str(e.value)
    with pytest.raises(LimoError):
        load_benchmark("no_such_benchmark")
    with pytest.raises(InputError):
        load_benchmark(str(tmp_path / "missing.jsonl"))


def test_hf_datasets_code_path_on_local_parquet(tmp_path, monkeypatch):
    """A spec without a local file goes through datasets.load_dataset (here the parquet builder on a local file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.Table.from_pylist([{"question": "5*5?", "final": 25, "uid": "q1", "type": "Algebra", "lvl": "Level 4"}]),
        tmp_path / "train.parquet",
    )
    hub = HubSource(
        "parquet", split="train", data_files=str(tmp_path / "train.parquet"),
        fields={"problem": "question", "answer": "final", "id": "uid", "subject": "type", "level": "lvl"},
    )  # fmt: skip
    spec = BenchmarkSpec("toy", file="toy-not-here.jsonl", hub=hub)
    monkeypatch.setitem(BENCHMARKS, "toy", spec)
    rows = load_benchmark("toy")
    assert rows == [{"id": "q1", "problem": "5*5?", "answer": "25", "subject": "Algebra", "level": 4, "source": "toy"}]


def test_duplicate_ids_rejected():
    with pytest.raises(InputError):
        rows_from_source([{"problem": "a", "answer": "1", "id": "x"}, {"problem": "b", "answer": "2", "id": "x"}],
                         BenchmarkSpec("t"), "t.jsonl")  # fmt: skip
