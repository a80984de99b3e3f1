"""Stage 03 decontaminate: the documented real overlaps are found; report files; extra files; drops counted."""

import json

import pytest

from limo.runs import StageContext, rows_to_dataset
from limo.stages import decontaminate


def _ctx(tmp_path):
    d = tmp_path / "03_decontaminate"
    d.mkdir(parents=True, exist_ok=True)
    return StageContext(run_dir=tmp_path, stage_dir=d, generation_cache=tmp_path / "g.sqlite")


@pytest.fixture(scope="module")
def real_report(shared_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("decon")
    rows = [
        json.loads(line)
        for name in ("math_train", "aime_1983_2023")
        for line in open(shared_data / "pools" / f"{name}.jsonl")
    ]
    res = decontaminate.run(rows_to_dataset(rows), decontaminate.Config(), _ctx(tmp))
    report = json.loads((tmp / "03_decontaminate" / "contamination_report.json").read_text())
    return rows, res, report, tmp


def _pairs(report, bench):
    return {(m["pool_id"], m["benchmark_id"]): m for m in report["benchmarks"][bench]["matches"]}


def _math500_ids(shared_data):
    """Registry ids of the MATH500 items, keyed by their MATH unique_id (the README names them that way)."""
    from limo.text import exact_key

    by_text = {
        exact_key(json.loads(line)["problem"]): json.loads(line)["id"]
        for line in open(shared_data / "benchmarks" / "math500.jsonl")
    }
    bench = decontaminate.load_benchmarks(decontaminate.Config(benchmarks=["math500"]))["math500"]
    return {by_text[exact_key(r["problem"])]: str(r["id"]) for r in bench}


def test_aime_pool_vs_math500_four_exact_one_near_verbatim(real_report, shared_data):
    _, _, report, _ = real_report
    ids = _math500_ids(shared_data)
    pairs = _pairs(report, "math500")
    for aime, math in [
        ("aime-2001-II-3", "test/intermediate_algebra/90.json"),
        ("aime-2015-II-6", "test/intermediate_algebra/1411.json"),
        ("aime-2017-II-7", "test/intermediate_algebra/1849.json"),
        ("aime-2010-I-6", "test/intermediate_algebra/2146.json"),
    ]:
        assert pairs[(aime, ids[math])]["match"] == "exact"
    near = pairs[("aime-2016-I-10", ids["test/intermediate_algebra/345.json"])]
    assert near["match"] == "fuzzy" and near["char_ratio"] >= 0.95
    exact = [m for m in report["benchmarks"]["math500"]["matches"] if m["match"] == "exact"]
    assert len(exact) == 4  # README: 0 MATH500 problems in math_train, 4 exact in the AIME pool


def test_olympiadbench_2890_near_copy_of_math_train(real_report):
    _, _, report, _ = real_report
    m = _pairs(report, "olympiadbench")[("train/intermediate_algebra/1087.json", "olympiadbench-2890")]
    assert m["match"] == "fuzzy" and m["char_ratio"] >= 0.95


def test_real_run_drops_every_matched_row_and_writes_markdown(real_report):
    rows, res, report, tmp = real_report
    assert len(res.kept) + len(res.dropped) == len(rows)
    assert len(res.dropped) == report["pool_rows_matched"]
    assert set(res.dropped["drop_reason"]) == {"contaminated"}
    assert report["benchmarks"]["aime24"]["by_match"].get("exact", 0) == 0  # the pool stops at 2023
    md = (tmp / "03_decontaminate" / "contamination_report.md").read_text()
    assert "aime-2016-I-10" in md and "olympiadbench-2890" in md


def test_extra_file_and_report_only_mode(tmp_path):
    extra = tmp_path / "my_eval.jsonl"
    extra.write_text(
        json.dumps(
            {
                "id": "e1",
                "problem": "A frog jumps 3 meters each hop. How far has it gone after 7 "
                "hops, counting only the hops it made on Tuesday morning?",
                "answer": "21",
            }
        )
        + "\n"
    )
    pool = [
        {
            "id": "p1",
            "problem": "A frog jumps 3 meters each hop. How far has it gone after 7 hops, counting only the "
            "hops it made on Tuesday morning?",
            "source": "s",
        },
        {
            "id": "p2",
            "problem": "A frog jumps 3 meters each hop; how far has it gone after 7 hops (counting only the "
            "hops that it made on Tuesday morning)?",
            "source": "s",
        },
        {"id": "p3", "problem": "Compute the determinant of the identity matrix of size 4.", "source": "s"},
    ]
    cfg = decontaminate.Config(benchmarks=["aime24"], extra_files=[str(extra)])
    res = decontaminate.run(rows_to_dataset(pool), cfg, _ctx(tmp_path))
    assert res.kept["id"] == ["p3"]
    by_id = {r["id"]: r["contaminated_with"] for r in res.dropped}
    assert by_id["p1"] == "my_eval:e1(exact)" and by_id["p2"].startswith("my_eval:e1(")
    cfg = decontaminate.Config(benchmarks=["aime24"], extra_files=[str(extra)], drop=False)
    res = decontaminate.run(rows_to_dataset(pool), cfg, _ctx(tmp_path))
    assert len(res.kept) == 3
    report = json.loads((tmp_path / "03_decontaminate" / "contamination_report.json").read_text())
    assert report["benchmarks"]["my_eval"]["matched_pool_rows"] == 2


def test_disabled_keeps_everything(tmp_path):
    rows = [{"id": "x", "problem": "anything", "source": "s"}]
    res = decontaminate.run(rows_to_dataset(rows), decontaminate.Config(enabled=False), _ctx(tmp_path))
    assert len(res.kept) == 1 and res.stats == {"enabled": False}
