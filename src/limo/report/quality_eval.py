"""How well each score profile ranks real long-CoT traces (the Sky-T1 traces in DATA/traces).

For every trace and each profile (`limo`: the paper's formula, limo.quality_limo; `extended`: limo.quality): the
features and rule score; then, per label (finished vs truncated, correct vs incorrect), the mean score of each
group and the AUC (the chance that a random positive trace outscores a random negative one; 0.5 = no signal).
docs/QUALITY.md reports these numbers; tests/test_quality.py checks them.

    python -m limo.report.quality_eval [--json out.json]
"""

import json
import sys
from pathlib import Path

from limo.io import read_jsonl
from limo.paths import data_dir
from limo.quality import DEFAULT_WEIGHTS, FEATURES, levels_by_quantile, rule_score, score_text
from limo.quality_limo import LIMO_FEATURES, LIMO_WEIGHTS, limo_scores

PROFILES: dict[str, tuple[tuple[str, ...], dict[str, float]]] = {
    "limo": (LIMO_FEATURES, LIMO_WEIGHTS),
    "extended": (FEATURES, DEFAULT_WEIGHTS),
}

TRACE_DIFFICULTY = {"aime24": 1.0, "amc23": 0.8}  # competition sets with no MATH level


def trace_rows(root: Path | None = None) -> list[dict]:
    """All trace rows with a `difficulty` (MATH level for math500 via benchmark_id, else by benchmark)."""
    root = root or data_dir()
    levels = {r["id"]: r.get("level") for r in read_jsonl(root / "benchmarks" / "math500.jsonl")}
    rows = []
    for path in sorted((root / "traces").glob("*.jsonl")):
        for row in read_jsonl(path):
            bench = row["source"].rsplit("/", 1)[-1]
            level = levels.get(row["benchmark_id"])
            row["difficulty"] = (level - 1) / 4 if level else TRACE_DIFFICULTY.get(bench, 0.5)
            row["benchmark"] = bench
            rows.append(row)
    return rows


def score_rows(rows: list[dict], profile: str = "extended", weights: dict[str, float] | None = None) -> list[dict]:
    """Each row with `features`, `rule_score` and `quality_level` (quintiles) under `profile`."""
    weights = weights or PROFILES[profile][1]
    out = []
    if profile == "limo":
        for row, s in zip(rows, limo_scores([r["trace"] for r in rows], weights), strict=True):
            out.append({**row, "features": s["features"], "rule_score": s["score"]})
    else:
        for row in rows:
            feats = score_text(row["trace"], problem=row["problem"], difficulty=row["difficulty"])
            scores = {k: f.score for k, f in feats.items()}
            out.append({**row, "features": scores, "rule_score": rule_score(scores, weights)})
    levels = levels_by_quantile([r["rule_score"] for r in out])
    for r, lv in zip(out, levels, strict=True):
        r["quality_level"] = lv
    return out


def auc(pos: list[float], neg: list[float]) -> float:
    """P(score of a random positive > a random negative), ties count one half (Mann-Whitney U / n1 n2)."""
    if not pos or not neg:
        return float("nan")
    wins = 0.0
    for p in pos:
        for q in neg:
            wins += 1.0 if p > q else 0.5 if p == q else 0.0
    return wins / (len(pos) * len(neg))


def ranking_report(scored: list[dict], profile: str = "extended") -> dict:
    """Means and AUCs of the rule score and each feature, for finished-vs-truncated and correct-vs-incorrect."""
    features, weights = PROFILES[profile]
    report: dict = {"profile": profile, "n": len(scored), "weights": weights}
    for label in ("finished", "correct"):
        pos = [r for r in scored if r[label]]
        neg = [r for r in scored if not r[label]]
        entry = {
            "n_pos": len(pos),
            "n_neg": len(neg),
            "mean_pos": sum(r["rule_score"] for r in pos) / len(pos),
            "mean_neg": sum(r["rule_score"] for r in neg) / len(neg),
            "auc": auc([r["rule_score"] for r in pos], [r["rule_score"] for r in neg]),
            "features": {},
        }
        for f in features:
            a = [r["features"][f] for r in pos]
            b = [r["features"][f] for r in neg]
            entry["features"][f] = {"mean_pos": sum(a) / len(a), "mean_neg": sum(b) / len(b), "auc": auc(a, b)}
        report[label] = entry
    # correct vs incorrect among finished traces only (is it more than "finished"?)
    fin = [r for r in scored if r["finished"]]
    report["correct_within_finished"] = {
        "n_pos": sum(r["correct"] for r in fin),
        "n_neg": sum(not r["correct"] for r in fin),
        "auc": auc([r["rule_score"] for r in fin if r["correct"]], [r["rule_score"] for r in fin if not r["correct"]]),
    }
    report["per_benchmark"] = {}
    for bench in sorted({r["benchmark"] for r in scored}):
        sub = [r for r in scored if r["benchmark"] == bench]
        report["per_benchmark"][bench] = {
            lab: auc([r["rule_score"] for r in sub if r[lab]], [r["rule_score"] for r in sub if not r[lab]])
            for lab in ("finished", "correct")
        }
    dist = {}
    for f in features + ("rule_score",):
        vals = sorted(r["features"][f] if f != "rule_score" else r["rule_score"] for r in scored)
        q = lambda p, v=vals: v[min(len(v) - 1, int(p * len(v)))]  # noqa: E731
        dist[f] = {
            "mean": sum(vals) / len(vals),
            "p10": q(0.1),
            "p25": q(0.25),
            "p50": q(0.5),
            "p75": q(0.75),
            "p90": q(0.9),
        }
    report["distributions"] = dist
    return report


def profiles_report(rows: list[dict] | None = None) -> dict:
    """{profile: ranking_report} for every profile, on the same traces."""
    rows = rows if rows is not None else trace_rows()
    return {profile: ranking_report(score_rows(rows, profile), profile) for profile in PROFILES}


def main(argv: list[str]) -> None:
    report = profiles_report()
    text = json.dumps(report, indent=2)
    if "--json" in argv:
        Path(argv[argv.index("--json") + 1]).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main(sys.argv[1:])
