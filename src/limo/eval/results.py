"""The numbers of one benchmark, computed from its sample records alone (so tests can recompute them), and the
results.md table.

Per benchmark: the headline score (pass@1 or unbiased pass@1 = avg@n) with a 95% CI, pass@k and maj@k, and what
changed beside the score: the no-answer rate, the boxed-answer rate, mean and p95 response tokens, the truncation
rate. With grading rule `extended` the `boxed` score sits beside it; with a judge, the score with and without the
judged rows.
"""

from __future__ import annotations

from limo.eval.metrics import mean, percentile, problem_metrics, score_block


def _breakdown(samples: list[dict], key: str) -> dict[str, dict]:
    """Accuracy (mean over problems of the fraction of correct samples) per subject or level."""
    groups: dict[str, dict[str, list[bool]]] = {}
    for s in samples:
        value = s.get(key)
        groups.setdefault("none" if value is None else str(value), {}).setdefault(s["problem_id"], []).append(
            s["correct"]
        )
    out = {}
    for name in sorted(groups):
        per_problem = [sum(v) / len(v) for v in groups[name].values()]
        out[name] = {"problems": len(per_problem), "accuracy": mean(per_problem)}
    return out


def _by_problem(samples: list[dict]) -> list[list[dict]]:
    by_problem: dict[str, list[dict]] = {}
    for s in samples:
        by_problem.setdefault(s["problem_id"], []).append(s)
    return [sorted(v, key=lambda s: s["sample_index"]) for v in by_problem.values()]


def _score(ordered: list[list[dict]], correct_of, n: int, seed: int) -> dict:
    per_problem = [mean([1.0 if correct_of(s) else 0.0 for s in v]) for v in ordered]
    block = score_block(per_problem, binary_single=(n == 1), seed=seed)
    block["metric"] = "pass@1" if n == 1 else f"avg@{n}"
    return block


def response_stats(samples: list[dict]) -> dict:
    """No-answer rate, boxed-answer rate, mean/p95 response tokens, truncation rate."""
    tokens = [s["completion_tokens"] for s in samples]
    return {
        "no_answer_rate": mean([1.0 if s["verdict"] == "no_answer" else 0.0 for s in samples]),
        "boxed_rate": mean([1.0 if s.get("has_box") else 0.0 for s in samples]),
        "mean_completion_tokens": mean(tokens),
        "p95_completion_tokens": percentile(tokens, 95),
        "truncation_rate": mean([1.0 if s["finish_reason"] == "length" else 0.0 for s in samples]),
    }


def benchmark_results(samples: list[dict], n: int, seed: int = 0) -> dict:
    """Every number of one benchmark from its sample records."""
    ordered = _by_problem(samples)
    correct = [[s["correct"] for s in v] for v in ordered]
    answers = [[s["extracted"] for s in v] for v in ordered]
    out = problem_metrics(correct, answers, seed=seed)
    verdicts: dict[str, int] = {}
    errors: dict[str, int] = {}  # generations the engine refused or failed (e.g. prompt_too_long), by reason
    for s in samples:
        verdicts[s["verdict"]] = verdicts.get(s["verdict"], 0) + 1
        if s["finish_reason"] == "error":
            errors[s.get("error") or "unknown"] = errors.get(s.get("error") or "unknown", 0) + 1
    out.update(
        {
            "samples": len(samples),
            "samples_per_problem": n,
            **response_stats(samples),
            "truncation": score_block(
                [mean([1.0 if s["finish_reason"] == "length" else 0.0 for s in v]) for v in ordered],
                binary_single=(n == 1),
                seed=seed,
            ),
            "verdicts": verdicts,
            "generation_errors": errors,
            "by_subject": _breakdown(samples, "subject"),
            "by_level": _breakdown(samples, "level"),
        }
    )
    rules = {s.get("rule") for s in samples}
    if rules == {"extended"}:  # the authors' `boxed` rule beside it
        out["boxed_score"] = _score(ordered, lambda s: s.get("boxed_verdict") == "correct", n, seed)
    judged = [s for s in samples if s.get("judged")]
    if any("judge_verdict" in s for s in samples):
        out["judge"] = {
            "judged": len(judged),
            "judged_share": len(judged) / len(samples) if samples else 0.0,
            "unparsable": sum(1 for s in samples if s.get("judge_verdict") == "unparsable"),
            "score_with_judged": out["score"]["value"],
            "score_rule_only": _score(ordered, lambda s: s.get("rule_verdict", s["verdict"]) == "correct", n, seed)[
                "value"
            ],
            "score_excluding_judged": _score(
                [v for v in ordered if not any(s.get("judged") for s in v)], lambda s: s["correct"], n, seed
            )["value"],
        }
    return out


def producers_summary(samples: list[dict]) -> dict:
    """The producers (engine, model revision, library versions) of the samples used, with counts."""
    import json

    counts: dict[str, int] = {}
    for s in samples:
        key = json.dumps(s.get("producer"), sort_keys=True)
        counts[key] = counts.get(key, 0) + 1
    producers = [{"producer": json.loads(k), "samples": v} for k, v in sorted(counts.items(), key=lambda kv: -kv[1])]
    known = [p for p in producers if p["producer"] is not None]
    return {"producers": producers, "mixed": len(known) > 1, "unknown_samples": counts.get("null", 0)}


def pct(x: float | None) -> str:
    """A fraction as a percentage with one decimal; "-" for None (results.md and the run report)."""
    return "-" if x is None else f"{100 * x:.1f}"


def results_markdown(results: dict) -> str:
    lines = [
        f"# Evaluation: {results['model']}",
        "",
        f"engine `{results['engine']['engine']}`, protocol `{results['protocol']}`",
        "",
        "| benchmark | problems | n | T | rule | score | 95% CI | boxed rule | no answer | boxed | mean tok "
        "| p95 tok | truncated |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, b in results["benchmarks"].items():
        s, p = b["score"], b["protocol"]
        boxed = b.get("boxed_score", {}).get("value") if p["grading"] == "extended" else s["value"]
        lines.append(
            f"| {name} | {b['problems']} | {b['n']} | {p['temperature']:g} | {p['grading']} | {s['metric']} "
            f"{pct(s['value'])} | [{pct(s['ci'][0])}, {pct(s['ci'][1])}] | {pct(boxed)} | "
            f"{pct(b['no_answer_rate'])}% | {pct(b['boxed_rate'])}% | {b['mean_completion_tokens']:.0f} | "
            f"{b['p95_completion_tokens']:.0f} | {pct(b['truncation_rate'])}% |"
        )
    judged = {k: b["judge"] for k, b in results["benchmarks"].items() if "judge" in b}
    if judged:
        lines += [
            "",
            "| benchmark | judged rows | share | unparsable | score with judge | rule only |",
            "|---|---|---|---|---|---|",
        ]
        for k, j in judged.items():
            lines.append(
                f"| {k} | {j['judged']} | {pct(j['judged_share'])}% | {j['unparsable']} | "
                f"{pct(j['score_with_judged'])} | {pct(j['score_rule_only'])} |"
            )
    lines += [
        "",
        "Rule `boxed` is the authors' grader (last \\boxed{}, no box = wrong); `extended` also reads answers stated "
        "in prose, and the `boxed rule` column gives the authors' score of the same responses. "
        "CIs: Wilson score interval for greedy pass@1; seeded percentile bootstrap over problems otherwise.",
    ]
    if results.get("producers", {}).get("mixed"):
        lines += ["", "**Note:** the samples were produced by more than one engine/model revision (see results.json)."]
    return "\n".join(lines) + "\n"
