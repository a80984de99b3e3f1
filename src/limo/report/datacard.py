"""The data card of a curation run: RUN/datacard.md (+ RUN/datacard.json with the same numbers, RUN/datacard/*.png).

It reads every RUN/NN_<stage>/stats.json (and the dropped/kept parquet files of the candidate stages) and writes:
  * counts per stage: rows in, rows out, dropped per reason;
  * candidate accounting: every candidate the solutions stage produced is either in the final set or dropped by
    exactly one later stage with a reason, and the card says whether the sums match;
  * subject, level, source, candidate-model and quality-level distributions of the final set;
  * histograms (PNG, matplotlib Agg): token length of the final solutions and quality scores of all scored vs
    selected candidates;
  * three example entries.

Called by the export stage; by hand: `python -m limo.report.datacard RUN` (uses RUN/export/messages.jsonl rows
joined with RUN/09_select/data.parquet).
"""

import json
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from limo.io import atomic_write_text, write_json

STAGE_DIR = re.compile(r"^(\d\d)_(\w+)$")
CANDIDATE_STAGES = ("verify", "score", "select")  # stages whose rows are candidates (after solutions expands)


def stage_dirs(run_dir: Path, exclude_stage: str | None = None) -> list[Path]:
    return sorted(
        p
        for p in run_dir.iterdir()
        if p.is_dir() and STAGE_DIR.match(p.name) and p.name != exclude_stage and (p / "stats.json").exists()
    )


def read_stats(run_dir: Path, exclude_stage: str | None = None) -> list[dict[str, Any]]:
    out = []
    for d in stage_dirs(run_dir, exclude_stage):
        stats = json.loads((d / "stats.json").read_text())
        out.append({"dir": d.name, "stage": STAGE_DIR.match(d.name).group(2), **stats})  # type: ignore[union-attr]
    return out


def candidate_accounting(stages: list[dict[str, Any]], final: int) -> dict[str, Any]:
    """Generated candidates vs (final + dropped per candidate stage and reason)."""
    by_name = {s["stage"]: s for s in stages}
    if "solutions" not in by_name:
        return {}
    generated = by_name["solutions"]["rows_out"]
    dropped: dict[str, dict[str, int]] = {}
    for name in CANDIDATE_STAGES:
        if name in by_name:
            dropped[name] = dict(by_name[name].get("dropped_by_reason", {}))
    total_dropped = sum(sum(v.values()) for v in dropped.values())
    return {
        "generated": generated,
        "dropped": dropped,
        "dropped_total": total_dropped,
        "final": final,
        "balanced": generated == final + total_dropped,
    }


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _dist(values: list[Any]) -> list[list[Any]]:
    counts = Counter("(none)" if v is None else v for v in values)
    n = max(sum(counts.values()), 1)
    return [[k, v, f"{100 * v / n:.1f}%"] for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))]


def _hist(path: Path, series: dict[str, list[float]], title: str, xlabel: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    allv = [v for values in series.values() for v in values]
    bins = min(30, max(5, len(allv))) if allv else 5
    if allv and min(allv) < max(allv):
        step = (max(allv) - min(allv)) / bins
        bins = [min(allv) + i * step for i in range(bins + 1)]  # shared edges, so the series compare bin by bin
    for label, values in series.items():
        if values:
            ax.hist(values, bins=bins, histtype="step", linewidth=2, label=f"{label} (n={len(values)})")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    if any(series.values()):
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _scored_candidates(run_dir: Path) -> list[float]:
    for d in sorted(run_dir.glob("*_score")):
        p = d / "data.parquet"
        if p.exists():
            import pyarrow.parquet as pq

            table = pq.read_table(p)
            if "quality_score" in table.column_names:
                return [float(x) for x in table.column("quality_score").to_pylist()]
    return []


def _clip(text: str, n: int = 1500) -> str:
    return text if len(text) <= n else text[:n] + f"\n[... {len(text) - n} more characters]"


def write_datacard(run_dir: str | Path, records: list[dict[str, Any]], exclude_stage: str | None = None) -> Path:
    """Write RUN/datacard.md (+ .json, + PNGs) for the exported `records` (rows with `messages` + metadata)."""
    run_dir = Path(run_dir)
    stages = read_stats(run_dir, exclude_stage)
    if exclude_stage:  # the stage writing this card: its stats.json comes after; it keeps every row it exports
        stages.append(
            {
                "dir": exclude_stage,
                "stage": "export",
                "rows_in": len(records),
                "rows_out": len(records),
                "dropped": 0,
                "dropped_by_reason": {},
                "seconds": None,
            }
        )
    accounting = candidate_accounting(stages, len(records))
    tokens = [float(r["completion_tokens"]) for r in records if r.get("completion_tokens") is not None]
    selected_scores = [float(r["quality_score"]) for r in records if r.get("quality_score") is not None]
    all_scores = _scored_candidates(run_dir)
    png_dir = run_dir / "datacard"
    _hist(png_dir / "tokens.png", {"selected": tokens}, "Solution length", "completion tokens")
    _hist(
        png_dir / "scores.png",
        {"all scored candidates": all_scores, "selected": selected_scores},
        "Quality score",
        "quality_score",
    )
    dists = {
        key: _dist([r.get(key) for r in records])
        for key in ("subject", "level", "source", "candidate_model", "quality_level")
    }
    summary = {
        "run": str(run_dir),
        "created": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "final_size": len(records),
        "stages": [
            {k: s.get(k) for k in ("dir", "rows_in", "rows_out", "dropped", "dropped_by_reason", "seconds")}
            for s in stages
        ],
        "candidate_accounting": accounting,
        "distributions": {k: {str(row[0]): row[1] for row in v} for k, v in dists.items()},
        "tokens": {"mean": sum(tokens) / len(tokens) if tokens else None, "max": max(tokens) if tokens else None},
    }
    write_json(run_dir / "datacard.json", summary)

    md = [
        f"# Data card: {run_dir.name}",
        "",
        f"Created {summary['created']}. Final set: **{len(records)}** "
        "problem/solution pairs. Machine-readable copy: `datacard.json`.",
        "",
    ]
    md += ["## Counts per stage", ""]
    md.append(
        _table(
            ["stage", "rows in", "rows out", "dropped", "dropped by reason", "seconds"],
            [
                [
                    s["dir"],
                    s.get("rows_read", s.get("rows_in")) if s["stage"] == "pool" else s.get("rows_in"),
                    s.get("rows_out"),
                    s.get("dropped"),
                    ", ".join(f"{k}: {v}" for k, v in s.get("dropped_by_reason", {}).items()) or "-",
                    "-" if s.get("seconds") is None else s["seconds"],
                ]
                for s in stages
            ],
        )
    )
    md.append("")
    md.append(
        "Stage `solutions` expands rows: its rows in are problems, its rows out are candidates. "
        "For `pool`, rows in are the rows read from the sources."
    )
    if accounting:
        md += ["", "## Candidate accounting", ""]
        rows = [["generated (solutions)", accounting["generated"]]]
        for stage, reasons in accounting["dropped"].items():
            for reason, n in reasons.items():
                rows.append([f"dropped at {stage}: {reason}", n])
        rows.append(["final set", accounting["final"]])
        md.append(_table(["", "candidates"], rows))
        md += [
            "",
            f"Generated = final + dropped: {accounting['generated']} = {accounting['final']} + "
            f"{accounting['dropped_total']} -> **{'balanced' if accounting['balanced'] else 'NOT balanced'}**.",
        ]
    md += ["", "## Distributions of the final set", ""]
    for key, rows in dists.items():
        md += [f"### {key}", "", _table([key, "count", "share"], rows), ""]
    md += [
        "## Histograms",
        "",
        "![solution length](datacard/tokens.png)",
        "",
        "Token counts are the engine's for model candidates and an estimate (words + punctuation) for "
        "candidates taken from pool columns.",
        "",
        "![quality score](datacard/scores.png)",
        "",
    ]
    md += ["## Examples", ""]
    for r in records[:3]:
        answer = r["messages"][-1]["content"]
        md += [
            f"### {r.get('id')} ({r.get('source')}, {r.get('subject')}, level {r.get('level')})",
            "",
            f"candidate `{r.get('candidate_id')}`, quality {r.get('quality_score', 0) or 0:.3f} "
            f"(L{r.get('quality_level')}), gold answer `{r.get('answer')}`",
            "",
            "**Problem**",
            "",
            "```text",
            _clip(str(r.get("problem"))),
            "```",
            "",
            "**Solution**",
            "",
            "```text",
            _clip(answer),
            "```",
            "",
        ]
    path = run_dir / "datacard.md"
    atomic_write_text(path, "\n".join(md) + "\n")
    return path


def main(argv: list[str]) -> None:
    from limo.io import read_jsonl

    run_dir = Path(argv[0])
    records = read_jsonl(run_dir / "export" / "messages.jsonl")
    import pyarrow.parquet as pq

    meta = {r["id"]: r for r in pq.read_table(next(run_dir.glob("*_select")) / "data.parquet").to_pylist()}
    records = [{**meta.get(r["id"], {}), **r} for r in records]
    print(write_datacard(run_dir, records, exclude_stage=next((p.name for p in run_dir.glob("*_export")), None)))


if __name__ == "__main__":
    main(sys.argv[1:])
