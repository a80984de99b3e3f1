"""Stage 05 diversity: target size, seeded, stratified subject x difficulty; clustering for unlabelled pools."""

import json
from collections import Counter

from limo.runs import StageContext, rows_to_dataset
from limo.stages import diversity


def _ctx(tmp_path):
    return StageContext(run_dir=tmp_path, stage_dir=tmp_path / "05", generation_cache=tmp_path / "g.sqlite")


def _rows(n_per: dict[tuple[str, int | None], int], **extra):
    rows = []
    for (subject, level), n in n_per.items():
        for i in range(n):
            rows.append(
                {
                    "id": f"{subject}-{level}-{i}",
                    "problem": f"{subject} problem {i}",
                    "answer": "1",
                    "solution": None,
                    "source": "t",
                    "subject": subject,
                    "level": level,
                    **extra,
                }
            )
    return rows


def test_proportional_strata_and_seeded(tmp_path):
    rows = _rows({("Algebra", 1): 60, ("Algebra", 5): 20, ("Geometry", 3): 20})
    cfg = diversity.Config(target_size=50, seed=7)
    res = diversity.run(rows_to_dataset(rows), cfg, _ctx(tmp_path))
    assert len(res.kept) == 50 and len(res.dropped) == 50
    assert set(res.dropped["drop_reason"]) == {"not_sampled"}
    assert Counter(res.kept["stratum"]) == {"Algebra | L1": 30, "Algebra | L5": 10, "Geometry | L3": 10}
    again = diversity.run(rows_to_dataset(rows), cfg, _ctx(tmp_path))
    assert again.kept["id"] == res.kept["id"]
    other = diversity.run(rows_to_dataset(rows), diversity.Config(target_size=50, seed=8), _ctx(tmp_path))
    assert other.kept["id"] != res.kept["id"]


def test_balanced_allocation_caps_small_strata(tmp_path):
    rows = _rows({("Algebra", 1): 60, ("Algebra", 5): 5, ("Geometry", 3): 20})
    res = diversity.run(rows_to_dataset(rows), diversity.Config(target_size=45, allocation="balanced"), _ctx(tmp_path))
    assert Counter(res.kept["stratum"]) == {"Algebra | L1": 20, "Algebra | L5": 5, "Geometry | L3": 20}


def test_pass_rate_bins_when_no_level(tmp_path):
    rows = _rows({("Algebra", None): 8}, strong_pass_rate=None)
    for i, r in enumerate(rows):
        r["strong_pass_rate"] = [0.0, 0.1, 0.3, 0.6][i % 4]
    res = diversity.run(rows_to_dataset(rows), diversity.Config(target_size=8), _ctx(tmp_path))
    assert set(res.kept["stratum"]) == {"Algebra | pass>=0", "Algebra | pass>=0.25", "Algebra | pass>=0.5"}


def test_pool_smaller_than_target_keeps_all(tmp_path):
    rows = _rows({("Algebra", 1): 5})
    res = diversity.run(rows_to_dataset(rows), diversity.Config(target_size=817), _ctx(tmp_path))
    assert len(res.kept) == 5 and len(res.dropped) == 0


def test_unlabelled_pool_is_clustered_with_tfidf(tmp_path, shared_data):
    rows = []
    for name in ("aime_1983_2023",):
        for line in open(shared_data / "pools" / f"{name}.jsonl"):
            r = json.loads(line)
            rows.append({**r, "subject": None})
    res = diversity.run(rows_to_dataset(rows[:300]), diversity.Config(target_size=40, n_clusters=8), _ctx(tmp_path))
    assert res.stats["clustered"] is True
    assert len(res.kept) == 40
    clusters = {s.split(" | ")[0] for s in res.kept["stratum"]}
    assert len(clusters) >= 6 and all(c.startswith("cluster-") for c in clusters)
