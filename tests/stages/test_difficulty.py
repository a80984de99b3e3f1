"""Stage 04 difficulty: stopping rules, adaptive == fixed decisions, cache keys shared with a fixed run, columns.

The scripted backend below (correct with probability p, decided by the request's seed) is used only to unit-test
the sampling logic; the last test runs the real SmolLM2 through the stage.
"""

import random

import pytest

from limo.engines.base import Completion, EngineConfig, SamplingParams
from limo.engines.cache import CachedEngine, GenerationCache
from limo.runs import StageContext, rows_to_dataset
from limo.stages import difficulty
from limo.stages.common import ModelSpec


class ScriptedBackend:
    """Answers \\boxed{gold} with probability p(problem), drawn from the request seed (so per sample index)."""

    batch_size = 64

    def __init__(self, rates: dict[str, tuple[float, str]]):
        self.rates = rates
        self.generated = 0

    def generate_batch(self, requests):
        out = []
        for r in requests:
            problem = r.prompt[-1]["content"]
            p, gold = self.rates[problem]
            ok = random.Random(r.seed).random() < p
            out.append(
                Completion(
                    text=f"so \\boxed{{{gold if ok else 'wrong'}}}",
                    prompt_tokens=1,
                    completion_tokens=1,
                    finish_reason="stop",
                )
            )
        self.generated += len(requests)
        return out

    def close(self):
        pass


def exact_grader(items):
    return [f"\\boxed{{{gold}}}" in text for text, gold in items]


def _setup(tmp_path, n_problems=300, seed=1):
    rng = random.Random(seed)
    rates = {}
    for i in range(n_problems):
        p = 0.0 if rng.random() < 0.4 else rng.betavariate(1.5, 1.5)
        rates[f"problem {i}"] = (p, str(i))
    cache = GenerationCache(tmp_path / "gen.sqlite")
    backend = ScriptedBackend(rates)
    engine = CachedEngine(EngineConfig(model="scripted"), cache)
    engine._backend = backend
    prompts = [[{"role": "user", "content": f"problem {i}"}] for i in range(n_problems)]
    golds = [str(i) for i in range(n_problems)]
    return engine, backend, prompts, golds


def test_weak_rule_exact_decisions():
    decide = difficulty.weak_rule(k_max=8, s=2)
    assert decide(0, 0) is None
    assert decide(2, 2) == "drop"  # solved s times: cannot be kept any more
    assert decide(7, 0) == "keep"  # 0 + 1 remaining < 2
    assert decide(6, 1) is None  # 1 + 2 remaining could still reach 2
    assert decide(8, 1) == "keep"


def test_strong_rule_band():
    decide = difficulty.strong_rule(n=8, min_solved=1, max_solved=2)  # keep 1..2 of 8
    assert decide(3, 3) == "too_easy_strong"
    assert decide(7, 0) is None and decide(8, 0) == "too_hard_strong"
    assert decide(6, 1) is None  # 1 + 2 remaining could still exceed 2
    assert decide(7, 1) == "keep"  # 1 + 1 remaining <= 2 and >= 1 already
    decide = difficulty.strong_rule(n=8, min_solved=0, max_solved=2)
    assert decide(6, 0) == "keep"  # 0 + 2 remaining <= 2


def test_v3_band_1_to_3_of_32_by_hand():
    """LIMO v3's band: solved at least 1 and at most 3 of 32; every final count decided as a hand check says."""
    decide = difficulty.strong_rule(n=32, min_solved=1, max_solved=3)
    for solved in range(33):
        expected = "too_hard_strong" if solved == 0 else "keep" if solved <= 3 else "too_easy_strong"
        assert decide(32, solved) == expected
    assert decide(4, 4) == "too_easy_strong"  # decided after 4 samples, 28 never drawn
    assert decide(31, 0) is None  # the 32nd sample may still be the one success


@pytest.mark.parametrize(
    "band,message",
    [
        ([4, 3], r"difficulty\.strong\[0\]: band \[4, 3\]: a=4 > b=3"),
        ([1, 40], r"difficulty\.strong\[0\]: band \[1, 40\]: b=40 > n=32"),
        ([-1, 3], r"difficulty\.strong\[0\]: band \[-1, 3\]: a=-1 must be >= 0"),
        ([1], r"difficulty\.strong\[0\]: band: expected two integers"),
        (None, r"difficulty\.strong\[0\]: band: give \[a, b\]"),
    ],
)
def test_band_errors_name_the_key(band, message):
    from limo.config import build
    from limo.errors import LimoError

    strong = {"engine": {"model": "m"}, "sampling": {"temperature": 0.6}, "n": 32}
    if band is not None:
        strong["band"] = band
    with pytest.raises(LimoError, match=message) as info:
        build(difficulty.Config, {"weak": None, "strong": [strong]}, "difficulty")
    assert "\n" not in str(info.value)


def test_stage_keeps_exactly_the_band(tmp_path):
    """The stage with a scripted strong model: rows solved 0, 1, 3 and 5 times of 8 -> only 1 and 3 are kept."""
    rows = [
        {
            "id": f"p{k}",
            "problem": f"problem {k}",
            "answer": str(k),
            "solution": None,
            "source": "t",
            "subject": None,
            "level": None,
        }
        for k in range(4)
    ]
    solved = {"problem 0": 0, "problem 1": 1, "problem 2": 3, "problem 3": 5}

    class CountingBackend:
        batch_size = 64

        def generate_batch(self, requests):
            out = []
            for r in requests:
                problem = r.prompt[-1]["content"]
                ok = r.sample_index < solved[problem]
                gold = problem.split()[-1]
                text = f"\\boxed{{{gold if ok else 'no'}}}"
                out.append(Completion(text=text, prompt_tokens=1, completion_tokens=1, finish_reason="stop"))
            return out

        def close(self):
            pass

    cfg = difficulty.Config(
        weak=None,
        strong=[
            difficulty.StrongSpec(EngineConfig(model="scripted"), SamplingParams(temperature=0.6), n=8, band=[1, 3])
        ],
    )
    ctx = StageContext(run_dir=tmp_path, stage_dir=tmp_path / "04", generation_cache=tmp_path / "gen.sqlite")
    original = difficulty._engine

    def scripted(spec, ctx):
        engine = original(spec, ctx)
        engine._backend = CountingBackend()
        return engine

    difficulty._engine = scripted
    try:
        res = difficulty.run(rows_to_dataset(rows), cfg, ctx)
    finally:
        difficulty._engine = original
    assert sorted(r["id"] for r in res.kept) == ["p1", "p2"]
    reasons = {r["id"]: r["drop_reason"] for r in res.dropped}
    assert reasons == {"p0": "too_hard_strong", "p3": "too_easy_strong"}
    assert all(r["difficulty_tier"] == 2 for r in res.kept)


@pytest.mark.parametrize("s,round_size", [(1, 1), (2, 1), (2, 3)])
def test_adaptive_equals_fixed_and_reuses_cache_keys(tmp_path, s, round_size):
    engine, backend, prompts, golds = _setup(tmp_path)
    sampling = SamplingParams(temperature=0.7, max_tokens=8)
    decide = difficulty.weak_rule(k_max=8, s=s)
    att, suc, dec = difficulty.adaptive_sample(engine, prompts, golds, sampling, 8, decide, exact_grader, round_size)
    adaptive_generated = backend.generated
    assert adaptive_generated == sum(att) < 8 * len(prompts)
    # the fixed k_max=8 run over the same cache only generates the samples the adaptive run skipped
    fixed = engine.generate(prompts, sampling, n=8)
    assert backend.generated - adaptive_generated == 8 * len(prompts) - sum(att)
    for i, row in enumerate(fixed):
        wins = exact_grader([(c.text, golds[i]) for c in row])
        assert ("drop" if sum(wins) >= s else "keep") == dec[i]
        assert sum(wins[: att[i]]) == suc[i]


def test_bayesian_early_stop_saves_samples_and_mostly_agrees(tmp_path):
    engine, backend, prompts, golds = _setup(tmp_path, n_problems=400)
    sampling = SamplingParams(temperature=0.7, max_tokens=8)
    exact = difficulty.adaptive_sample(engine, prompts, golds, sampling, 8, difficulty.weak_rule(8, 1), exact_grader)
    rule = difficulty.weak_rule(8, 1, eps=0.05)
    early = difficulty.adaptive_sample(engine, prompts, golds, sampling, 8, rule, exact_grader, on_round=rule.refit)
    assert sum(early[0]) < sum(exact[0])
    agree = sum(a == b for a, b in zip(exact[2], early[2], strict=True)) / len(prompts)
    assert agree >= 0.95


def test_grid_prior_fits_a_pool_with_many_unsolvable_problems():
    prior = difficulty.GridPrior()
    prior.fit([8] * 100, [0] * 60 + [8] * 40)
    assert prior.w[0] > 0.5 and prior.w[-1] > 0.3
    assert prior.p_change(4, 0, 4, 1) < 0.05 < difficulty.GridPrior().p_change(4, 0, 4, 1)


def test_config_rejects_greedy_multi_sample():
    from limo.config import build
    from limo.errors import LimoError

    with pytest.raises(LimoError, match="temperature"):
        build(difficulty.Config, {"weak": {"sampling": {"temperature": 0.0}, "n": 4}}, "difficulty")


@pytest.mark.slow
def test_stage_with_real_smollm2(tmp_path, smollm2_backend):
    rows = [
        {"id": f"p{i}", "problem": q, "answer": a, "solution": None, "source": "t", "subject": "A", "level": 1}
        for i, (q, a) in enumerate([("What is 2+2?", "4"), ("What is 3*3?", "9"), ("Name the 10th prime.", "29")])
    ]
    cfg = difficulty.Config(
        weak=ModelSpec(
            EngineConfig(model="smollm2-135m", batch_size=8), SamplingParams(temperature=0.7, max_tokens=24), n=2
        ),
        max_problems=2,
        seed=3,
    )
    ctx = StageContext(run_dir=tmp_path, stage_dir=tmp_path / "04", generation_cache=tmp_path / "gen.sqlite")
    import limo.stages.difficulty as mod

    original = mod._engine

    def shared_backend(spec, ctx):
        engine = original(spec, ctx)
        engine._backend = smollm2_backend
        engine.close = lambda: None
        return engine

    mod._engine = shared_backend
    try:
        res = difficulty.run(rows_to_dataset(rows), cfg, ctx)
    finally:
        mod._engine = original
    assert len(res.kept) + len(res.dropped) == 3
    assert res.dropped.filter(lambda r: r["drop_reason"] == "not_in_subset").num_rows == 1
    tried = list(res.kept) + [r for r in res.dropped if r["drop_reason"] != "not_in_subset"]
    assert len(tried) == 2
    for r in tried:
        assert 1 <= r["weak_attempts"] <= 2 and 0 <= r["weak_successes"] <= r["weak_attempts"]
        assert r["weak_pass_rate"] == pytest.approx(r["weak_successes"] / r["weak_attempts"], abs=1e-4)
    for r in res.kept:
        assert r["difficulty_tier"] == 1 and r["weak_successes"] == 0
    stats = res.stats["engines"]["tier 1: smollm2-135m"]
    assert stats["generated"] == res.stats["weak_samples"]
