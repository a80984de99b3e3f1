"""Stage 02 dedup: exact + MinHash near duplicates, kept by source priority, with the kept id recorded."""

import json

from limo.config import build
from limo.runs import StageContext, rows_to_dataset
from limo.stages import dedup


def _ctx(tmp_path):
    return StageContext(run_dir=tmp_path, stage_dir=tmp_path / "02_dedup", generation_cache=tmp_path / "g.sqlite")


def _row(i, problem, source="a", subject=None, level=None):
    return {
        "id": i,
        "problem": problem,
        "answer": "1",
        "solution": None,
        "source": source,
        "subject": subject,
        "level": level,
    }


def test_demo_pool_duplicates(tmp_path):
    rows = [json.loads(line) for line in open("recipes/data/demo_pool.jsonl")]
    res = dedup.run(rows_to_dataset(rows), dedup.Config(), _ctx(tmp_path))
    got = {r["id"]: (r["drop_reason"], r["duplicate_of"]) for r in res.dropped}
    assert got == {
        "demo-dup-exact-1": ("exact_duplicate", "demo-06"),
        "demo-dup-exact-2": ("exact_duplicate", "demo-23"),
        "demo-dup-near-1": ("near_duplicate", "demo-17"),
        "demo-dup-near-2": ("near_duplicate", "demo-21"),
    }
    assert len(res.kept) == len(rows) - 4


def test_source_priority_decides_which_copy_is_kept(tmp_path):
    text = "Let $x$ be a real number such that $x^2 + 4x + 4 = 0$. Find the value of $x$ and explain."
    rows = [
        _row("low-1", text, "low"),
        _row("high-1", text.replace("explain.", "explain why."), "high"),
        _row("other", "How many primes are less than 20?", "low"),
    ]
    cfg = build(dedup.Config, {"keep_priority": ["high", "low"]}, "dedup")
    res = dedup.run(rows_to_dataset(rows), cfg, _ctx(tmp_path))
    assert res.kept["id"] == ["high-1", "other"]
    assert res.dropped[0]["duplicate_of"] == "high-1" and res.dropped[0]["drop_reason"] == "near_duplicate"
    # default priority = order of first appearance (recipe order of sources)
    res = dedup.run(rows_to_dataset(rows), dedup.Config(), _ctx(tmp_path))
    assert res.kept["id"] == ["low-1", "other"]


def test_keep_priority_then_level_and_subject(tmp_path):
    """The difficulty ablation keeps the MATH/AIME copy with a level, whatever the file order."""
    text = "Find the number of ordered pairs of positive integers (m, n) with m + n = 190 and gcd(m, n) = 1."
    rows = [
        _row("numina-1", text, "numina"),
        _row("aime-1", text, "aime", level=None),
        _row("math-bare", text, "math"),
        _row("math-level", text, "math", subject="Number Theory", level=5),
    ]
    cfg = build(dedup.Config, {"keep_priority": ["math", "aime"]}, "dedup")
    res = dedup.run(rows_to_dataset(rows), cfg, _ctx(tmp_path))
    assert res.kept["id"] == ["math-level"]
    assert {r["id"]: r["duplicate_of"] for r in res.dropped} == dict.fromkeys(
        ["numina-1", "aime-1", "math-bare"], "math-level"
    )
    # within one source, a row with level/subject beats an earlier bare copy even without keep_priority
    res = dedup.run(rows_to_dataset(rows[2:]), dedup.Config(), _ctx(tmp_path))
    assert res.kept["id"] == ["math-level"]


def test_threshold_and_switches(tmp_path):
    rows = [
        _row("a", "What is the greatest product of two integers whose sum is 246?"),
        _row("b", "What is the greatest product of two integers whose sum is 1998?"),
        _row("c", "What is the greatest product of two integers whose sum is 246?"),
    ]
    strict = dedup.run(rows_to_dataset(rows), dedup.Config(threshold=0.95), _ctx(tmp_path))
    assert strict.dropped["id"] == ["c"]
    loose = dedup.run(rows_to_dataset(rows), dedup.Config(threshold=0.6), _ctx(tmp_path))
    assert loose.dropped["id"] == ["b", "c"]
    off = dedup.run(rows_to_dataset(rows), dedup.Config(exact=False, near=False), _ctx(tmp_path))
    assert len(off.kept) == 3


def test_real_pools_aime_copies_in_math_train(shared_data, tmp_path):
    rows = [
        json.loads(line)
        for name in ("math_train", "aime_1983_2023")
        for line in open(shared_data / "pools" / f"{name}.jsonl")
    ]
    res = dedup.run(rows_to_dataset(rows), dedup.Config(), _ctx(tmp_path))
    exact = [r for r in res.dropped if r["drop_reason"] == "exact_duplicate"]
    # README: 196 AIME problems appear verbatim in MATH train; 2 exact pairs inside math_train
    assert sum(r["source"] == "aime_1983_2023" and r["duplicate_of"].startswith("train/") for r in exact) == 196
    pairs = {"train/algebra/27.json", "train/algebra/2794.json", "train/algebra/2463.json", "train/algebra/24377.json"}
    inside = [r for r in exact if r["source"] == "math_train"]
    assert len(inside) == 2 and all(r["id"] in pairs and r["duplicate_of"] in pairs for r in inside)
    assert len(res.kept) + len(res.dropped) == len(rows)
