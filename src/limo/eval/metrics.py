"""Evaluation metrics over per-problem samples: unbiased pass@k, avg@n, maj@k, and 95% confidence intervals.

    from limo.eval.metrics import pass_at_k, maj_at_k, bootstrap_ci, wilson_ci
    pass_at_k(n=16, c=3, k=4)         # 1 - C(13,4)/C(16,4)

Confidence intervals (documented choice), both from scipy.stats:
- greedy pass@1 (one binary outcome per problem): the Wilson score interval, 95%
  (`binomtest(k, n).proportion_ci(method="wilson")`);
- everything else (avg@n, pass@k, maj@k: a score in [0, 1] per problem): a percentile bootstrap over problems
  (`scipy.stats.bootstrap(method="percentile")`), 2000 resamples, seeded (default seed 0), so the same samples
  always give the same interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from limo.grading import normalize


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with n samples of which c are correct: 1 - C(n-c, k) / C(n, k)."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got c={c}, n={n}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def ks_for(n: int) -> list[int]:
    """k = 1, 2, 4, ... up to n, plus n itself."""
    ks, k = [], 1
    while k <= n:
        ks.append(k)
        k *= 2
    if ks[-1] != n:
        ks.append(n)
    return ks


def majority_answer(answers: Sequence[str | None]) -> int | None:
    """Index of the first sample whose normalised answer is the most common one (ties: the earliest answer
    wins); None answers do not vote. None when no sample has an answer."""
    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    for i, a in enumerate(answers):
        if a is None:
            continue
        key = normalize(a)
        counts[key] = counts.get(key, 0) + 1
        first.setdefault(key, i)
    if not counts:
        return None
    best = max(counts, key=lambda key: (counts[key], -first[key]))
    return first[best]


def maj_at_k(answers: Sequence[str | None], correct: Sequence[bool], k: int) -> float:
    """1.0 if the majority answer among the first k samples is correct, else 0.0."""
    idx = majority_answer(list(answers[:k]))
    return 1.0 if idx is not None and correct[idx] else 0.0


def mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def wilson_ci(successes: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion (scipy.stats)."""
    from scipy.stats import binomtest

    if total == 0:
        return (0.0, 0.0)
    ci = binomtest(int(successes), int(total)).proportion_ci(confidence_level=confidence, method="wilson")
    return (max(0.0, float(ci.low)), min(1.0, float(ci.high)))


def bootstrap_ci(
    scores: Sequence[float], resamples: int = 2000, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of per-problem scores (resampling problems), seeded (scipy.stats)."""
    import numpy as np
    from scipy.stats import bootstrap

    x = np.asarray(scores, dtype=float)
    if len(x) == 0:
        return (0.0, 0.0)
    if len(x) == 1 or np.all(x == x[0]):
        return (float(x[0]), float(x[0]))  # every resample has the same mean
    res = bootstrap(
        (x,), np.mean, n_resamples=resamples, confidence_level=1 - alpha, method="percentile",
        rng=np.random.default_rng(seed), vectorized=True,
    )  # fmt: skip
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


def percentile(xs: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation (numpy's default)."""
    import numpy as np

    return float(np.percentile(np.asarray(xs, dtype=float), q)) if len(xs) else 0.0


def score_block(per_problem: Sequence[float], binary_single: bool, seed: int = 0) -> dict:
    """{"value", "ci": [lo, hi], "ci_method"} for per-problem scores."""
    value = mean(per_problem)
    if binary_single:
        lo, hi = wilson_ci(int(round(sum(per_problem))), len(per_problem))
        method = "wilson"
    else:
        lo, hi = bootstrap_ci(per_problem, seed=seed)
        method = "bootstrap"
    return {"value": value, "ci": [lo, hi], "ci_method": method}


def problem_metrics(correct: Sequence[Sequence[bool]], answers: Sequence[Sequence[str | None]], seed: int = 0) -> dict:
    """All metrics for one benchmark from per-problem sample verdicts and extracted answers (same shape).

    Returns {"n", "problems", "score": {metric, value, ci}, "pass@k": {k: block}, "maj@k": {k: block}}.
    """
    if not correct:
        return {
            "n": 0,
            "problems": 0,
            "score": {"metric": "pass@1", "value": 0.0, "ci": [0.0, 0.0]},
            "pass@k": {},
            "maj@k": {},
        }
    n = len(correct[0])
    if any(len(c) != n for c in correct):
        raise ValueError("every problem needs the same number of samples")
    counts = [sum(bool(x) for x in c) for c in correct]
    avg = [c / n for c in counts]
    headline = score_block(avg, binary_single=(n == 1), seed=seed)
    headline["metric"] = "pass@1" if n == 1 else f"avg@{n}"
    out = {"n": n, "problems": len(correct), "score": headline, "pass@k": {}, "maj@k": {}}
    for k in ks_for(n):
        scores = [pass_at_k(n, c, k) for c in counts]
        out["pass@k"][str(k)] = score_block(scores, binary_single=(n == 1 and k == 1), seed=seed)
        maj = [maj_at_k(a, c, k) for a, c in zip(answers, correct, strict=True)]  # maj@1 = the first sample
        out["maj@k"][str(k)] = score_block(maj, binary_single=(n == 1), seed=seed)
    return out
