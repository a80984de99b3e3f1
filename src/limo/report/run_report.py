"""The report of `limo run`: RUN/report.md with the curation funnel, the training curve, the before/after table and
what changed besides the score (no-answer, boxed-answer and truncation rates, mean and p95 response tokens).

    write_run_report(RUN, name, base_model, train_summary, timings) -> summary dict

Reads RUN/summary.json (curation), RUN/eval/{base,tuned}/results.json, writes RUN/report/compare.* (paired test
and bar chart, via limo.eval.compare), RUN/report/loss.png, RUN/report.md, and prints a one-screen summary.
"""

import json
from pathlib import Path

from limo.eval.results import pct
from limo.io import atomic_write_text


def plot_loss(losses: list[list[float]], path: Path) -> bool:
    if not losses:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, values = zip(*losses, strict=True)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(steps, values, marker=".")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (assistant tokens)")
    ax.set_title("SFT loss")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def funnel_rows(curate_summary: list[dict]) -> list[str]:
    lines = ["| stage | rows in | rows out | dropped by reason |", "|---|---:|---:|---|"]
    for s in curate_summary:
        reasons = ", ".join(f"{k}: {v}" for k, v in s.get("dropped_by_reason", {}).items()) or "-"
        rows_in = s.get("rows_read", s.get("rows_in")) if s["stage"] == "pool" else s.get("rows_in")
        lines.append(f"| {s['stage']} | {rows_in} | {s.get('rows_out')} | {reasons} |")
    return lines


def before_after_rows(cmp: dict | None, tuned: dict) -> list[str]:
    lines = [
        "| benchmark | metric | base | fine-tuned | diff (95% CI) | p | problems |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for bench, res in tuned["benchmarks"].items():
        score = res["score"]
        tuned_cell = f"{pct(score['value'])} [{pct(score['ci'][0])}, {pct(score['ci'][1])}]"
        if cmp and bench in cmp["benchmarks"]:
            e = cmp["benchmarks"][bench]
            base = e["runs"][0]
            p = e["paired"][0]
            base_cell = f"{pct(base['value'])} [{pct(base['ci'][0])}, {pct(base['ci'][1])}]"
            diff = f"{100 * p['diff']:+.1f} [{100 * p['diff_ci'][0]:+.1f}, {100 * p['diff_ci'][1]:+.1f}]"
            lines.append(
                f"| {bench} | {score['metric']} | {base_cell} | {tuned_cell} | {diff} | {p['p_value']:.3f} "
                f"| {res['problems']} |"
            )
        else:
            lines.append(f"| {bench} | {score['metric']} | - | {tuned_cell} | - | - | {res['problems']} |")
    return lines


STAT_ROWS = [  # (results.json key, label, percent?)
    ("no_answer_rate", "no answer", True),
    ("boxed_rate", "boxed answer", True),
    ("mean_completion_tokens", "mean response tokens", False),
    ("p95_completion_tokens", "p95 response tokens", False),
    ("truncation_rate", "truncated", True),
]


def response_stat_rows(base: dict | None, tuned: dict) -> list[str]:
    """What changed besides the score, per benchmark: no-answer, boxed-answer and truncation rates, response length."""
    lines = ["| benchmark | measure | base | fine-tuned |", "|---|---|---:|---:|"]
    for bench, res in tuned["benchmarks"].items():
        before = (base or {}).get("benchmarks", {}).get(bench, {})
        for key, label, percent in STAT_ROWS:
            if key not in res:
                continue
            fmt = (lambda v: "-" if v is None else f"{100 * v:.1f}%") if percent else (
                lambda v: "-" if v is None else f"{v:.0f}"
            )  # fmt: skip
            lines.append(f"| {bench} | {label} | {fmt(before.get(key))} | {fmt(res.get(key))} |")
    return lines


def write_run_report(run_dir: Path, name: str, base_model: str, train_summary: dict, timings: dict) -> dict:
    from limo.console import console, kv_table
    from limo.eval.compare import compare_runs

    run_dir = Path(run_dir)
    report_dir = run_dir / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    curate_summary = json.loads((run_dir / "summary.json").read_text())
    tuned = json.loads((run_dir / "eval" / "tuned" / "results.json").read_text())
    base_dir = run_dir / "eval" / "base"
    base = json.loads((base_dir / "results.json").read_text()) if (base_dir / "results.json").exists() else None
    cmp = (
        compare_runs([base_dir, run_dir / "eval" / "tuned"], report_dir)
        if (base_dir / "results.json").exists()
        else None
    )
    has_loss = plot_loss(train_summary.get("losses") or [], report_dir / "loss.png")
    exported = next((s.get("rows_out") for s in curate_summary if s["stage"] == "export"), None)

    lines = [
        f"# limo run: {name}",
        "",
        f"Base model `{base_model}`, fine-tuned on {exported} curated examples; "
        f"curation {timings.get('curate', 0):.0f}s, training {timings.get('train', 0):.0f}s, "
        f"evaluation {timings.get('eval', 0):.0f}s on this machine.",
        "",
        "## Before / after",
        "",
        *before_after_rows(cmp, tuned),
        "",
        "Scores in %, 95% confidence intervals in brackets; the difference is paired over the same problems "
        "(sign-flip permutation test).",
        "",
        "## What changed besides the score",
        "",
        *response_stat_rows(base, tuned),
        "",
        "On a CPU demo the score of a 135M model barely moves; whether it learned to finish and box its answer does.",
        "",
    ]
    if cmp:
        lines += ["![before/after](report/compare.png)", ""]
    lines += ["## Curation funnel", "", *funnel_rows(curate_summary), "", "Details: [datacard.md](datacard.md)", ""]
    lines += [
        "## Training",
        "",
        f"{train_summary.get('steps')} steps, {train_summary.get('seconds', 0):.0f}s; loss "
        f"{train_summary.get('first_window_loss', float('nan')):.3f} (first window) -> "
        f"{train_summary.get('last_window_loss', float('nan')):.3f} (last window).",
        "",
    ]
    if has_loss:
        lines += ["![loss](report/loss.png)", ""]
    atomic_write_text(run_dir / "report.md", "\n".join(lines))

    summary = {
        "name": name,
        "base_model": base_model,
        "exported_examples": exported,
        "train_steps": train_summary.get("steps"),
        "loss_first_last": [train_summary.get("first_window_loss"), train_summary.get("last_window_loss")],
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "tuned": {b: r["score"] for b, r in tuned["benchmarks"].items()},
        "base": {b: e["runs"][0] for b, e in cmp["benchmarks"].items()} if cmp else None,
        "report": str(run_dir / "report.md"),
    }
    screen = {"examples curated": exported, "train steps": summary["train_steps"]}
    for bench, res in tuned["benchmarks"].items():
        before = pct(cmp["benchmarks"][bench]["runs"][0]["value"]) if cmp and bench in cmp["benchmarks"] else "-"
        screen[f"{bench} ({res['score']['metric']})"] = f"{before} -> {pct(res['score']['value'])}"
        old = (base or {}).get("benchmarks", {}).get(bench, {})
        for key, label in (("no_answer_rate", "no answer"), ("boxed_rate", "boxed")):
            if key in res:
                screen[f"{bench} {label} %"] = f"{pct(old.get(key))} -> {pct(res[key])}"
    screen.update({f"{k} seconds": f"{v:.0f}" for k, v in timings.items()})
    screen["report"] = str(run_dir / "report.md")
    console.print(kv_table(f"limo run: {name}", screen))
    return summary
