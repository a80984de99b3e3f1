"""`limo compare DIR_A DIR_B [...]`: side-by-side eval results with paired differences and significance.

    limo compare runs/base runs/limo --out runs/compare

For every benchmark present in all runs: each run's headline score (pass@1 or avg@n) with its 95% CI, and for every
run after the first its paired difference to the first over the problems both runs evaluated: mean per-problem
difference, a 95% paired-bootstrap CI (seeded), and a two-sided sign-flip permutation test p-value (seeded, exact
when there are at most 10,000 sign patterns; both from scipy.stats). Writes OUT/compare.json, OUT/compare.md,
OUT/compare.png (bars with CI error bars).
"""

from __future__ import annotations

import json
from pathlib import Path

from limo.errors import InputError, LimoError
from limo.eval.metrics import mean

PERMUTATIONS = 10_000
BOOTSTRAP = 2000


def load_run(run_dir: str | Path) -> tuple[dict, dict[str, dict[str, float]]]:
    """(results.json, {benchmark: {problem_id: per-problem score}}) of an eval output directory."""
    run_dir = Path(run_dir)
    res_path, samples_path = run_dir / "results.json", run_dir / "samples.jsonl"
    for p in (res_path, samples_path):
        if not p.exists():
            raise InputError("not an eval output directory (missing file)", path=str(p))
    from limo.io import iter_jsonl, read_text

    try:
        results = json.loads(read_text(res_path, "eval results file"))
    except json.JSONDecodeError as e:
        raise InputError(f"malformed JSON ({e.msg})", path=str(res_path), line=e.lineno) from e
    if not isinstance(results, dict) or not isinstance(results.get("benchmarks", {}), dict):
        raise InputError(
            "not a limo eval results.json (expected an object with a 'benchmarks' object)", path=str(res_path)
        )

    per: dict[str, dict[str, list[bool]]] = {}
    for line, s in iter_jsonl(samples_path):
        for f in ("benchmark", "problem_id", "correct"):
            if f not in s:
                raise InputError("missing field", path=str(samples_path), line=line, field=f)
        per.setdefault(s["benchmark"], {}).setdefault(str(s["problem_id"]), []).append(bool(s["correct"]))
    scores = {b: {pid: sum(v) / len(v) for pid, v in probs.items()} for b, probs in per.items()}
    return results, scores


def sign_flip_pvalue(diffs: list[float], permutations: int = PERMUTATIONS, seed: int = 0) -> float:
    """Two-sided paired permutation test of mean difference 0 by sign flips of each problem's difference
    (scipy.stats.permutation_test, one sample, permutation_type="samples"; exact when 2^m <= `permutations`)."""
    import numpy as np
    from scipy.stats import permutation_test

    d = np.asarray([x for x in diffs if x != 0.0], dtype=float)  # zero differences do not change under flips
    if len(d) <= 1:
        return 1.0  # one difference: both signs give the same |sum|
    res = permutation_test(
        (d,), np.sum, permutation_type="samples", alternative="two-sided", n_resamples=permutations,
        rng=np.random.default_rng(seed), vectorized=True,
    )  # fmt: skip
    return float(min(1.0, res.pvalue))


def paired_bootstrap_ci(diffs: list[float], resamples: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    from limo.eval.metrics import bootstrap_ci

    return bootstrap_ci(diffs, resamples=resamples, seed=seed)


def compare_runs(run_dirs: list[str | Path], out_dir: str | Path | None = None, seed: int = 0) -> dict:
    """Compare eval runs against the first one; write compare.json/.md/.png into out_dir (default: first run's
    parent / 'compare'). Returns the comparison dict."""
    if len(run_dirs) < 2:
        raise LimoError("compare needs at least two eval output directories")
    runs = [load_run(d) for d in run_dirs]
    names = [str(Path(d)) for d in run_dirs]
    shared = [b for b in runs[0][0]["benchmarks"] if all(b in r[0]["benchmarks"] for r in runs[1:])]
    if not shared:
        raise LimoError("the runs have no benchmark in common")
    out: dict = {"runs": names, "models": [r[0]["model"] for r in runs], "seed": seed, "benchmarks": {}}
    for bench in shared:
        entry = {"runs": [], "paired": []}
        for name, (res, _) in zip(names, runs, strict=True):
            s = res["benchmarks"][bench]["score"]
            entry["runs"].append(
                {
                    "run": name,
                    "metric": s["metric"],
                    "value": s["value"],
                    "ci": s["ci"],
                    "problems": res["benchmarks"][bench]["problems"],
                }
            )
        base = runs[0][1].get(bench, {})
        for name, (_, scores) in zip(names[1:], runs[1:], strict=True):
            other = scores.get(bench, {})
            common = sorted(set(base) & set(other))
            diffs = [other[p] - base[p] for p in common]
            lo, hi = paired_bootstrap_ci(diffs, seed=seed) if diffs else (0.0, 0.0)
            entry["paired"].append(
                {
                    "run": name,
                    "vs": names[0],
                    "common_problems": len(common),
                    "mean_a": mean([base[p] for p in common]),
                    "mean_b": mean([other[p] for p in common]),
                    "diff": mean(diffs),
                    "diff_ci": [lo, hi],
                    "wins": sum(d > 0 for d in diffs),
                    "losses": sum(d < 0 for d in diffs),
                    "ties": sum(d == 0 for d in diffs),
                    "p_value": sign_flip_pvalue(diffs, seed=seed) if diffs else 1.0,
                    "test": "two-sided sign-flip permutation test on per-problem differences",
                }
            )
        out["benchmarks"][bench] = entry
    out_dir = Path(out_dir) if out_dir is not None else Path(run_dirs[0]).parent / "compare"
    out_dir.mkdir(parents=True, exist_ok=True)
    from limo.io import atomic_write_text, write_json

    write_json(out_dir / "compare.json", out)
    atomic_write_text(out_dir / "compare.md", compare_markdown(out))
    plot_compare(out, out_dir / "compare.png")
    out["files"] = {k: str(out_dir / f"compare.{k}") for k in ("json", "md", "png")}
    print_compare(out)
    return out


def compare_markdown(cmp: dict) -> str:
    lines = ["# Comparison", "", "Runs: " + ", ".join(f"`{r}`" for r in cmp["runs"]), ""]
    header = "| benchmark | " + " | ".join(f"run {i}" for i in range(len(cmp["runs"]))) + " |"
    lines += [header, "|---|" + "---|" * len(cmp["runs"])]
    for bench, e in cmp["benchmarks"].items():
        cells = [
            f"{r['metric']} {100 * r['value']:.1f} [{100 * r['ci'][0]:.1f}, {100 * r['ci'][1]:.1f}]" for r in e["runs"]
        ]
        lines.append(f"| {bench} | " + " | ".join(cells) + " |")
    lines += ["", "## Paired differences (run i minus run 0, same problems)", ""]
    lines += [
        "| benchmark | run | problems | diff (pts) | 95% CI | wins/losses/ties | p (sign-flip) |",
        "|---|---|---|---|---|---|---|",
    ]
    for bench, e in cmp["benchmarks"].items():
        for p in e["paired"]:
            lines.append(
                f"| {bench} | `{p['run']}` | {p['common_problems']} | {100 * p['diff']:+.1f} | "
                f"[{100 * p['diff_ci'][0]:+.1f}, {100 * p['diff_ci'][1]:+.1f}] | "
                f"{p['wins']}/{p['losses']}/{p['ties']} | {p['p_value']:.4f} |"
            )
    return "\n".join(lines) + "\n"


def plot_compare(cmp: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    benches = list(cmp["benchmarks"])
    nruns = len(cmp["runs"])
    width = 0.8 / nruns
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(benches) * nruns / 2 + 3), 4))
    x = np.arange(len(benches))
    for i in range(nruns):
        vals = [100 * cmp["benchmarks"][b]["runs"][i]["value"] for b in benches]
        lo = [100 * cmp["benchmarks"][b]["runs"][i]["ci"][0] for b in benches]
        hi = [100 * cmp["benchmarks"][b]["runs"][i]["ci"][1] for b in benches]
        err = [np.maximum(0, np.subtract(vals, lo)), np.maximum(0, np.subtract(hi, vals))]
        ax.bar(x + (i - (nruns - 1) / 2) * width, vals, width, yerr=err, capsize=3, label=f"{i}: {cmp['runs'][i]}")
    ax.set_xticks(x)
    ax.set_xticklabels(benches)
    ax.set_ylabel("score (%) with 95% CI")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def print_compare(cmp: dict) -> None:
    from rich.table import Table

    from limo.console import console

    table = Table(title="limo compare (run i vs run 0)")
    for col in ("benchmark", "run", "A", "B", "diff", "95% CI", "p"):
        table.add_column(col)
    for bench, e in cmp["benchmarks"].items():
        for p in e["paired"]:
            table.add_row(
                bench,
                p["run"],
                f"{100 * p['mean_a']:.1f}",
                f"{100 * p['mean_b']:.1f}",
                f"{100 * p['diff']:+.1f}",
                f"[{100 * p['diff_ci'][0]:+.1f}, {100 * p['diff_ci'][1]:+.1f}]",
                f"{p['p_value']:.4f}",
            )
    console.print(table)
