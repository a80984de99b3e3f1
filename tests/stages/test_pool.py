"""Stage 01 pool: sources, field mapping, normalisation, gold answers, counted drops and clear input errors."""

import json

import pytest

from limo.config import build
from limo.errors import InputError
from limo.runs import StageContext
from limo.stages import pool


def _ctx(tmp_path):
    return StageContext(run_dir=tmp_path, stage_dir=tmp_path / "01_pool", generation_cache=tmp_path / "g.sqlite")


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _run(tmp_path, sources):
    cfg = build(pool.Config, {"sources": sources}, "pool")
    return pool.run(None, cfg, _ctx(tmp_path))


def test_demo_pool_drops_the_row_without_answer(tmp_path):
    res = _run(tmp_path, [{"name": "limo-demo", "path": "recipes/data/demo_pool.jsonl"}])
    assert res.stats["rows_read"] == 43
    assert len(res.kept) == 42 and len(res.dropped) == 1
    assert res.dropped[0]["id"] == "demo-no-answer" and res.dropped[0]["drop_reason"] == "no_answer"
    row = res.kept[0]
    assert set(pool.OUR_FIELDS) | {"source"} <= set(res.kept.column_names)
    assert row["source"] == "limo-demo" and row["subject"] == "Prealgebra" and row["level"] == 1


def test_mapping_normalisation_and_boxed_answer(tmp_path):
    src = _write_jsonl(
        tmp_path / "a.jsonl",
        [
            {
                "qid": "q1",
                "question": "  What is\u00a0ﬁve  plus\r\n\r\n\r\n two? ",
                "sol": "It is \\boxed{7}.",
                "type": "Level 2",
            },
            {"qid": "q2", "question": "No box here", "sol": "seven", "type": "Level ?"},
            {"qid": "q3", "question": 42, "sol": "\\boxed{1}", "type": 1},
            {"qid": "q4", "question": "   ", "sol": "\\boxed{1}", "type": 1},
        ],
    )
    res = _run(
        tmp_path,
        [
            {
                "name": "mine",
                "path": str(src),
                "subject": "Algebra",
                "fields": {"id": "qid", "problem": "question", "solution": "sol", "level": "type"},
            }
        ],
    )
    assert res.kept["id"] == ["q1"]
    assert res.kept[0]["problem"] == "What is five plus\n\n two?"  # NFKC (ﬁ -> fi), spaces, newlines, strip
    assert res.kept[0]["answer"] == "7" and res.kept[0]["level"] == 2 and res.kept[0]["subject"] == "Algebra"
    reasons = dict(zip(res.dropped["id"], res.dropped["drop_reason"], strict=True))
    assert reasons == {"q2": "no_answer", "q3": "problem_not_string", "q4": "empty_problem"}
    assert res.dropped[list(res.dropped["id"]).index("q3")]["pool_line"] == 3


def test_answer_field_wins_over_boxed_and_numbers_become_strings(tmp_path):
    src = _write_jsonl(tmp_path / "a.jsonl", [{"id": "x", "problem": "p?", "answer": 27.0, "solution": "\\boxed{3}"}])
    res = _run(tmp_path, [{"name": "s", "path": str(src)}])
    assert res.kept[0]["answer"] == "27"
    res = _run(tmp_path, [{"name": "s", "path": str(src), "answer_from": "boxed"}])
    assert res.kept[0]["answer"] == "3"


def test_missing_mapped_field_names_file_line_and_field(tmp_path):
    src = _write_jsonl(tmp_path / "a.jsonl", [{"question": "a?", "answer": "1"}, {"answer": "2"}])
    with pytest.raises(InputError) as e:
        _run(tmp_path, [{"name": "s", "path": str(src), "fields": {"problem": "question"}}])
    msg = str(e.value)
    assert "a.jsonl" in msg and "line 2" in msg and "'question'" in msg


def test_empty_source_is_an_error(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(InputError, match="empty"):
        _run(tmp_path, [{"name": "s", "path": str(tmp_path / "empty.jsonl")}])


def test_duplicate_ids_across_sources_need_a_prefix(tmp_path):
    a = _write_jsonl(tmp_path / "a.jsonl", [{"id": "1", "problem": "a?", "answer": "1"}])
    b = _write_jsonl(tmp_path / "b.jsonl", [{"id": "1", "problem": "b?", "answer": "2"}])
    with pytest.raises(Exception, match="id_prefix"):
        _run(tmp_path, [{"name": "a", "path": str(a)}, {"name": "b", "path": str(b)}])
    res = _run(tmp_path, [{"name": "a", "path": str(a)}, {"name": "b", "path": str(b), "id_prefix": "b/"}])
    assert res.kept["id"] == ["1", "b/1"] and res.kept["source"] == ["a", "b"]


def test_hf_load_dataset_on_local_parquet_and_json(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.Table.from_pylist(
            [
                {"q": "What is 1+1?", "a": "2", "subj": "Arithmetic"},
                {"q": "What is 2+2?", "a": None, "subj": "Arithmetic"},
            ]
        ),
        tmp_path / "t.parquet",
    )
    _write_jsonl(tmp_path / "t.jsonl", [{"q": "What is 3+3?", "a": "6"}])
    res = _run(
        tmp_path,
        [
            {
                "name": "pq",
                "hf_id": "parquet",
                "data_files": [str(tmp_path / "t.parquet")],
                "fields": {"problem": "q", "answer": "a", "subject": "subj"},
            },
            {
                "name": "js",
                "hf_id": "json",
                "data_files": [str(tmp_path / "t.jsonl")],
                "fields": {"problem": "q", "answer": "a"},
            },
        ],
    )
    assert res.kept["problem"] == ["What is 1+1?", "What is 3+3?"]
    assert res.kept["subject"] == ["Arithmetic", None]
    assert res.dropped["drop_reason"] == ["no_answer"]
    with pytest.raises(InputError, match="'question'"):
        _run(
            tmp_path,
            [
                {
                    "name": "pq",
                    "hf_id": "parquet",
                    "data_files": [str(tmp_path / "t.parquet")],
                    "fields": {"problem": "question"},
                }
            ],
        )


def test_real_pools(shared_data, tmp_path):
    res = _run(
        tmp_path,
        [
            {"name": "math_train", "path": "data:pools/math_train.jsonl"},
            {"name": "aime_1983_2023", "path": "data:pools/aime_1983_2023.jsonl"},
        ],
    )
    assert res.stats["sources"]["math_train"] == {"read": 7500, "kept": 7498, "dropped": 2}
    assert res.stats["sources"]["aime_1983_2023"] == {"read": 919, "kept": 919, "dropped": 0}
    assert sorted(res.dropped["id"]) == ["train/number_theory/7115.json", "train/number_theory/7117.json"]
    assert set(res.dropped["drop_reason"]) == {"no_answer"}


def test_source_needs_exactly_one_of_path_or_hf_id():
    from limo.errors import LimoError

    with pytest.raises(LimoError, match="exactly one"):
        build(pool.Config, {"sources": [{"name": "x"}]}, "pool")


def test_malformed_row_deep_in_a_big_file_names_file_and_line_or_is_dropped(shared_data, tmp_path):
    """invalid_rows: error stops with the file and line; drop counts it (pool_file / pool_line) and keeps the rest."""
    from limo.streaming.synthetic import write_pool

    path = write_pool(tmp_path / "big.jsonl", 50_000, seed=5, bad_line=49_999)
    source = [{"name": "big", "path": str(path)}]
    with pytest.raises(InputError) as e:
        pool.run(None, build(pool.Config, {"sources": source}, "pool"), _ctx(tmp_path))
    assert str(e.value).startswith(f"{path}, line 49999: malformed JSON")
    res = pool.run(None, build(pool.Config, {"sources": source, "invalid_rows": "drop"}, "pool"), _ctx(tmp_path))
    bad = [r for r in res.dropped if r["drop_reason"] == "invalid_row"]
    assert [(r["pool_file"], r["pool_line"]) for r in bad] == [(str(path), 49_999)]
    assert res.stats["rows_read"] == 50_000 and len(res.kept) + len(res.dropped) == 50_000
    with pytest.raises(ValueError, match="invalid_rows"):
        pool.Config(sources=[pool.SourceConfig(name="x", path="x.jsonl")], invalid_rows="skip")
