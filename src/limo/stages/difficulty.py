"""Stage 04 `difficulty`: keep problems that are hard for models, sampling adaptively.

Tier 1 (LIMO §2: problems a weak model solves "within a few attempts" are removed): the weak model is sampled up
to k_max = `weak.n` times per problem; a problem solved >= `weak_drop_at` times is dropped ("too_easy_weak").
Tier 2 (the difficulty band): each model in `strong` samples the survivors `n` times and keeps a problem it
solved at least a and at most b of its n times (`band: [a, b]`); one solved more than b times is dropped
("too_easy_strong"), one solved fewer than a times ("too_hard_strong"). LIMO v3 §3.1.1 keeps what
DeepSeek-R1-Distill-Qwen-32B solves 1-3 of 32 times (recipes/limo-v3.yaml: `band: [1, 3]`, n 32).

Sampling is ADAPTIVE: problems are sampled in rounds of `round_size`, and a problem leaves as soon as its decision
can no longer change (tier 1: successes >= s -> drop; successes + remaining < s -> keep; tier 2 likewise for its
bounds). Optionally (`early_stop_eps` > 0) tier 1 also stops when a Beta-Binomial predictive bound says the
decision changes with probability < eps (prior Beta(`prior_a`, `prior_b`)). Later rounds ask the cached engine for
samples offset..offset+n-1 (`sample_offset`), so cache keys equal those of a non-adaptive run and a resumed run
never regenerates a finished sample. Answers are graded with limo.grading.grade_many (the one verifier).

Columns added: weak_attempts, weak_successes, weak_pass_rate, strong_attempts, strong_successes,
strong_pass_rate (summed over strong models), strong_by_model (JSON {model: [attempts, successes]}),
difficulty_tier (1 = survived the weak model, 2 = also the strong ones).

Benchmark: `python bench/difficulty.py` (adaptive vs fixed k_max=8 on a simulated 10k pool).
"""

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from datasets import Dataset

from limo.console import console, progress_bar
from limo.engines.base import EngineConfig, SamplingParams
from limo.runs import StageContext, StageResult
from limo.stages.common import ModelSpec, problem_prompt, to_rows, with_reason

Decision = str | None  # "keep" | "drop" | None (undecided)
GradeFn = Callable[[list[tuple[str, str]]], list[bool]]


def _default_weak() -> ModelSpec:
    # LIMO §2 uses Qwen2.5-Math-7B-Instruct as the weak filter; the embedded default runs on a laptop
    return ModelSpec(EngineConfig(model="smollm2-135m"), SamplingParams(temperature=0.7, max_tokens=512), n=8)


@dataclass
class StrongSpec(ModelSpec):
    """A tier-2 model: keep problems it solves at least `band[0]` and at most `band[1]` of its `n` samples."""

    band: list[int] | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.band is None:
            raise ValueError(f"band: give [a, b] = keep problems solved at least a and at most b of n={self.n} times")
        if len(self.band) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in self.band):
            raise ValueError(f"band: expected two integers [a, b], got {self.band!r}")
        a, b = self.band
        if a < 0:
            raise ValueError(f"band {self.band}: a={a} must be >= 0")
        if a > b:
            raise ValueError(f"band {self.band}: a={a} > b={b} (solved at least a and at most b of n times)")
        if b > self.n:
            raise ValueError(f"band {self.band}: b={b} > n={self.n} (a model cannot solve more than its n samples)")

    @property
    def min_solved(self) -> int:
        return self.band[0]  # type: ignore[index]

    @property
    def max_solved(self) -> int:
        return self.band[1]  # type: ignore[index]


@dataclass
class Config:
    enabled: bool = True
    weak: ModelSpec | None = field(default_factory=_default_weak)  # n = k_max
    weak_drop_at: int = 1  # s: drop problems the weak model solves at least s times
    strong: list[StrongSpec] = field(default_factory=list)  # each with its band [a, b] of n
    round_size: int = 1
    early_stop_eps: float = 0.0  # 0 = exact stopping only (decisions identical to fixed k_max)
    prior: str = "pool"  # "pool": empirical-Bayes grid prior fitted to the pool each round | "a,b": fixed Beta(a, b)
    max_problems: int | None = None  # seeded subset of the input, the rest dropped as "not_in_subset"
    grade_timeout_s: float = 5.0
    seed: int = 0

    def __post_init__(self):
        if self.weak_drop_at < 1:
            raise ValueError("weak_drop_at must be >= 1")
        if self.round_size < 1:
            raise ValueError("round_size must be >= 1")
        if not 0 <= self.early_stop_eps < 0.5:
            raise ValueError("early_stop_eps must be in [0, 0.5)")
        if self.prior != "pool":
            try:
                a, b = (float(v) for v in self.prior.split(","))
            except ValueError as e:
                raise ValueError(f"prior must be 'pool' or 'a,b' (a Beta prior), got {self.prior!r}") from e
            if a <= 0 or b <= 0:
                raise ValueError("prior Beta(a, b) needs a, b > 0")
        for spec in ([self.weak] if self.weak else []) + self.strong:
            if spec.n > 1 and spec.sampling.greedy:
                raise ValueError(f"model {spec.name}: n={spec.n} samples need temperature > 0 (greedy repeats itself)")


# -- stopping rules ------------------------------------------------------------------------------------------------


class GridPrior:
    """Empirical-Bayes prior over the pass rate: weights on a grid of p values, fitted to the pool by EM (the
    non-parametric maximum-likelihood estimate). The adaptive stopping rule ignores nothing the likelihood needs,
    so fitting it to the counts gathered so far is valid. Refitted after every round."""

    def __init__(self, points: int = 101, a: float | None = None, b: float | None = None):
        import numpy as np

        self.p = np.linspace(0.0, 1.0, points)
        if a is not None and b is not None:  # a fixed Beta(a, b) prior, discretised
            from scipy.stats import beta

            w = beta.pdf(np.clip(self.p, 1e-4, 1 - 1e-4), a, b)
            self.w = w / w.sum()
        else:
            self.w = np.full(points, 1.0 / points)

    def fit(self, attempts: list[int], successes: list[int], iterations: int = 200) -> None:
        import numpy as np

        m = np.asarray(attempts, dtype=float)
        x = np.asarray(successes, dtype=float)
        seen = m > 0
        if not seen.any():
            return
        m, x = m[seen], x[seen]
        logp = np.log(np.clip(self.p, 1e-12, 1.0))
        logq = np.log(np.clip(1.0 - self.p, 1e-12, 1.0))
        loglik = x[:, None] * logp[None, :] + (m - x)[:, None] * logq[None, :]
        lik = np.exp(loglik - loglik.max(axis=1, keepdims=True))
        w = self.w.copy()
        for _ in range(iterations):
            post = lik * w[None, :]
            post /= post.sum(axis=1, keepdims=True)
            w = post.mean(axis=0)
        self.w = w

    def p_change(self, attempts: int, successes: int, remaining: int, need: int) -> float:
        """P(at least `need` successes in `remaining` more samples | successes of attempts so far)."""
        import numpy as np
        from scipy.stats import binom

        post = self.w * self.p**successes * (1.0 - self.p) ** (attempts - successes)
        total = post.sum()
        if total <= 0:
            return 1.0
        return float(np.dot(post / total, binom.sf(need - 1, remaining, self.p)))


class WeakRule:
    """Tier 1 decision after `attempts` samples with `successes`: drop when solved >= s times (final at k_max).
    Exact stopping, plus (eps > 0) an early keep when the predictive probability that the final decision would be
    drop is below eps, under `prior` (a GridPrior refitted to the pool after every round)."""

    def __init__(self, k_max: int, s: int, eps: float = 0.0, prior: GridPrior | None = None):
        self.k_max, self.s, self.eps = k_max, s, eps
        self.prior = prior if prior is not None or eps == 0 else GridPrior()

    def __call__(self, attempts: int, successes: int) -> Decision:
        if successes >= self.s:
            return "drop"
        remaining = self.k_max - attempts
        if successes + remaining < self.s:
            return "keep"
        if self.eps > 0 and attempts > 0 and self.prior is not None:
            if self.prior.p_change(attempts, successes, remaining, self.s - successes) < self.eps:
                return "keep"
        return None

    def refit(self, attempts: list[int], successes: list[int]) -> None:
        if self.eps > 0 and self.prior is not None:
            self.prior.fit(attempts, successes)


def weak_rule(k_max: int, s: int, eps: float = 0.0, prior: GridPrior | None = None) -> WeakRule:
    return WeakRule(k_max, s, eps, prior)


def strong_rule(n: int, min_solved: int, max_solved: int):
    """Tier 2 decision: keep when min_solved <= successes <= max_solved of n samples (exact stopping: a problem
    leaves as soon as no remaining sample can change the decision)."""

    def decide(attempts: int, successes: int) -> Decision:
        remaining = n - attempts
        if successes > max_solved:
            return "too_easy_strong"
        if successes + remaining < min_solved:
            return "too_hard_strong"
        if successes >= min_solved and successes + remaining <= max_solved:
            return "keep"
        return None

    return decide


def adaptive_sample(
    engine,
    prompts: list,
    golds: list[str],
    sampling: SamplingParams,
    k_max: int,
    decide: Callable[[int, int], Decision],
    grade_fn: GradeFn,
    round_size: int = 1,
    progress: Callable[[int], None] | None = None,
    on_round: Callable[[list[int], list[int]], None] | None = None,
) -> tuple[list[int], list[int], list[str]]:
    """Sample each prompt in rounds until `decide` returns a decision; (attempts, successes, decisions).
    `on_round(attempts, successes)` runs after each round is graded, before the decisions (e.g. a prior refit)."""
    n = len(prompts)
    attempts, successes = [0] * n, [0] * n
    decisions: list[Decision] = [decide(0, 0) for _ in range(n)]
    # problems go to the engine shortest prompt first, so batches hold similar lengths (little padding);
    # the order does not change any cache key
    length = [len(json.dumps(p)) for p in prompts]
    active = sorted((i for i in range(n) if decisions[i] is None), key=lambda i: (length[i], i))
    while active:
        offset = attempts[active[0]]  # every active problem has the same number of attempts
        size = min(round_size, k_max - offset)
        outs = engine.generate([prompts[i] for i in active], sampling, n=size, progress=progress, sample_offset=offset)
        flat = [(c.text, golds[i]) for i, row in zip(active, outs, strict=True) for c in row]
        grades = grade_fn(flat)
        pos = 0
        for i, row in zip(active, outs, strict=True):
            attempts[i] += len(row)
            successes[i] += sum(grades[pos : pos + len(row)])
            pos += len(row)
        if on_round is not None:
            on_round(attempts, successes)
        for i in active:
            decisions[i] = decide(attempts[i], successes[i])
            if decisions[i] is None and attempts[i] >= k_max:
                raise RuntimeError(f"stopping rule gave no decision after k_max={k_max} samples")
        active = [i for i in active if decisions[i] is None]
    return attempts, successes, decisions  # type: ignore[return-value]


def real_grader(timeout_s: float) -> GradeFn:
    def grade(items: list[tuple[str, str]]) -> list[bool]:
        from limo.grading import grade_many

        return [g.correct for g in grade_many(items, timeout_s=timeout_s)]

    return grade


def _engine(spec: ModelSpec, ctx: StageContext):
    from limo.engines.base import make_engine

    return make_engine(spec.engine, ctx.generation_cache)


def _run_tier(rows, spec, decide, cfg, ctx, label, engine_stats: dict) -> tuple[list[int], list[int], list[str]]:
    engine = _engine(spec, ctx)
    try:
        with progress_bar(len(rows) * spec.n, f"difficulty: {label} {spec.name} (<= {spec.n}/problem)") as advance:
            out = adaptive_sample(
                engine,
                [problem_prompt(r["problem"]) for r in rows],
                [r["answer"] for r in rows],
                spec.sampling,
                spec.n,
                decide,
                real_grader(cfg.grade_timeout_s),
                cfg.round_size,
                advance,
                decide.refit if isinstance(decide, WeakRule) else None,
            )
        stats = engine.stats.to_dict()
        keys = ("requests", "cache_hits", "generated", "completion_tokens")
        engine_stats[f"{label}: {spec.name}"] = {k: stats[k] for k in keys}
        console.print(
            f"  {label} {spec.name}: {sum(out[0])} samples for {len(rows)} problems "
            f"(fixed k would be {len(rows) * spec.n}); generated {stats['generated']}, "
            f"cache hits {stats['cache_hits']}"
        )
        return out
    finally:
        engine.close()


def run(ds: Dataset, cfg: Config, ctx: StageContext) -> StageResult:
    rows = to_rows(ds)
    dropped: list[dict] = []
    engine_stats: dict[str, dict] = {}
    stats: dict = {"engines": engine_stats}
    if not cfg.enabled:
        return StageResult.from_rows(rows, [], {"enabled": False})
    for r in rows:  # every row (kept or dropped) gets every column: Arrow tables need one schema
        r.update(
            weak_attempts=None,
            weak_successes=None,
            weak_pass_rate=None,
            strong_attempts=None,
            strong_successes=None,
            strong_pass_rate=None,
            strong_by_model=None,
            difficulty_tier=0,
        )
    if cfg.max_problems is not None and len(rows) > cfg.max_problems:
        chosen = set(random.Random(cfg.seed).sample(range(len(rows)), cfg.max_problems))
        dropped += with_reason([r for i, r in enumerate(rows) if i not in chosen], "not_in_subset")
        rows = [r for i, r in enumerate(rows) if i in chosen]
    if cfg.weak is not None and rows:
        prior = None
        if cfg.early_stop_eps > 0:
            prior = GridPrior() if cfg.prior == "pool" else GridPrior(*(float(v) for v in cfg.prior.split(",")))
        decide = weak_rule(cfg.weak.n, cfg.weak_drop_at, cfg.early_stop_eps, prior)
        att, suc, dec = _run_tier(rows, cfg.weak, decide, cfg, ctx, "tier 1", engine_stats)
        stats["weak_samples"] = sum(att)
        stats["weak_samples_fixed_k"] = len(rows) * cfg.weak.n
        survivors = []
        for r, a, s, d in zip(rows, att, suc, dec, strict=True):
            r.update(weak_attempts=a, weak_successes=s, weak_pass_rate=round(s / a, 4) if a else None)
            if d == "drop":
                dropped += with_reason([r], "too_easy_weak")
            else:
                r["difficulty_tier"] = 1
                survivors.append(r)
        rows = survivors
    per_model: dict[str, dict[str, list[int]]] = {r["id"]: {} for r in rows}
    for spec in cfg.strong:
        if not rows:
            break
        decide = strong_rule(spec.n, spec.min_solved, spec.max_solved)
        att, suc, dec = _run_tier(rows, spec, decide, cfg, ctx, "tier 2", engine_stats)
        stats[f"strong_samples[{spec.name}]"] = sum(att)
        survivors = []
        for r, a, s, d in zip(rows, att, suc, dec, strict=True):
            per_model[r["id"]][spec.name] = [a, s]
            r["strong_by_model"] = json.dumps(per_model[r["id"]])
            r["strong_attempts"] = sum(v[0] for v in per_model[r["id"]].values())
            r["strong_successes"] = sum(v[1] for v in per_model[r["id"]].values())
            r["strong_pass_rate"] = round(r["strong_successes"] / r["strong_attempts"], 4)
            if d == "keep":
                survivors.append(r)
            else:
                dropped += with_reason([r], d)
        rows = survivors
    if cfg.strong:
        for r in rows:
            r["difficulty_tier"] = 2
    return StageResult.from_rows(rows, dropped, stats)
