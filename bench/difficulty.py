"""Adaptive vs fixed difficulty sampling on a simulated pool (tier 1 of stage 04).

    .venv/bin/python bench/difficulty.py [--problems 10000] [--k-max 8] [--s 1]

A pool of problems with true weak-model pass rates drawn from a mixture (documented in MIXTURE below: a large share
of problems the weak model essentially never solves, plus Beta-distributed ones), and a scripted backend that
answers correctly with probability p, drawn from the request seed (so sample j of a problem has the same outcome in
every run). Both arms go through the real CachedEngine and limo.stages.difficulty.adaptive_sample; grading is an
exact string match on the scripted outputs (the real stage uses limo.grading.grade_many).

Baseline: fixed k_max samples per problem, drop if solved >= s times. Arms: adaptive with exact stopping (decisions
identical by construction), and adaptive + Beta-Binomial early stop (eps). Acceptance: < 50% of the baseline's
samples with >= 98% identical keep/drop decisions. Writes bench/results/difficulty.json.
"""

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from limo.engines.base import Completion, EngineConfig, SamplingParams  # noqa: E402
from limo.engines.cache import CachedEngine, GenerationCache  # noqa: E402
from limo.stages.difficulty import adaptive_sample, weak_rule  # noqa: E402

# (share, Beta(a, b)) of true pass rates: hard problems (p ~ 0), hard-ish, medium and easy ones
MIXTURE = [(0.35, (0.05, 30.0)), (0.10, (1.0, 9.0)), (0.20, (2.0, 2.0)), (0.35, (6.0, 1.5))]


class ScriptedBackend:
    batch_size = 512

    def __init__(self, rates: list[float]):
        self.rates = rates
        self.generated = 0

    def generate_batch(self, requests):
        out = []
        for r in requests:
            i = int(r.prompt.split()[1])
            ok = random.Random(r.seed).random() < self.rates[i]
            out.append(
                Completion(
                    text=f"\\boxed{{{i if ok else 'x'}}}", prompt_tokens=1, completion_tokens=1, finish_reason="stop"
                )
            )
        self.generated += len(requests)
        return out

    def close(self):
        pass


def grade(items):
    return [text == f"\\boxed{{{gold}}}" for text, gold in items]


def pool(n: int, seed: int, mixture=MIXTURE) -> list[float]:
    rng = random.Random(seed)
    shares = [m[0] for m in mixture]
    return [rng.betavariate(*rng.choices(mixture, weights=shares)[0][1]) for _ in range(n)]


def arm(rates, k_max, s, eps, round_size, cache_path: Path, fixed: bool = False):
    backend = ScriptedBackend(rates)
    engine = CachedEngine(EngineConfig(model="scripted", batch_size=512), GenerationCache(cache_path))
    engine._backend = backend
    prompts = [f"problem {i}" for i in range(len(rates))]
    golds = [str(i) for i in range(len(rates))]
    sampling = SamplingParams(temperature=0.7, max_tokens=1)
    t0 = time.perf_counter()
    if fixed:
        outs = engine.generate(prompts, sampling, n=k_max)
        wins = [sum(grade([(c.text, g) for c in row])) for row, g in zip(outs, golds, strict=True)]
        decisions = ["drop" if w >= s else "keep" for w in wins]
        samples = backend.generated
    else:
        rule = weak_rule(k_max, s, eps=eps)
        att, _, decisions = adaptive_sample(
            engine, prompts, golds, sampling, k_max, rule, grade, round_size, on_round=rule.refit
        )
        samples = sum(att)
        assert samples == backend.generated
    return {"samples": samples, "seconds": round(time.perf_counter() - t0, 2)}, decisions


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=10_000)
    ap.add_argument("--k-max", type=int, default=8)
    ap.add_argument("--s", type=int, default=1)
    ap.add_argument("--eps", type=float, nargs="+", default=[0.02, 0.05])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default="/tmp/limo-bench-difficulty")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    for f in work.glob("*.sqlite*"):
        f.unlink()
    rates = pool(args.problems, args.seed)
    base, base_dec = arm(rates, args.k_max, args.s, 0.0, 1, work / "fixed.sqlite", fixed=True)
    rows = [{"arm": f"fixed k_max={args.k_max}", **base, "sample_ratio": 1.0, "agreement": 1.0}]
    arms = [("adaptive exact (round 1)", 0.0, 1), ("adaptive exact (round 2)", 0.0, 2)]
    arms += [(f"adaptive + early stop eps={e}", e, 1) for e in args.eps]
    for name, eps, rs in arms:
        res, dec = arm(rates, args.k_max, args.s, eps, rs, work / f"{name.split()[1]}-{rs}-{eps}.sqlite")
        agree = sum(a == b for a, b in zip(base_dec, dec, strict=True)) / len(rates)
        rows.append(
            {
                "arm": name,
                **res,
                "sample_ratio": round(res["samples"] / base["samples"], 4),
                "agreement": round(agree, 4),
            }
        )
    kept = sum(d == "keep" for d in base_dec)
    print(f"pool: {args.problems} problems, mixture {MIXTURE}; fixed run keeps {kept}, s={args.s}")
    print(f"{'arm':40s} {'samples':>9s} {'ratio':>7s} {'agree':>7s} {'sec':>7s}")
    for r in rows:
        print(f"{r['arm']:40s} {r['samples']:9d} {r['sample_ratio']:7.3f} {r['agreement']:7.4f} {r['seconds']:7.2f}")
    passing = [r for r in rows[1:] if r["sample_ratio"] < 0.5 and r["agreement"] >= 0.98]
    best = min(passing, key=lambda r: r["sample_ratio"]) if passing else rows[-1]
    result = {
        "machine": "2-core CPU dev box, no GPU (shared)",
        "problems": args.problems,
        "k_max": args.k_max,
        "s": args.s,
        "mixture": MIXTURE,
        "seed": args.seed,
        "fixed_keeps": kept,
        "arms": rows,
        "best_passing_arm": best["arm"],
        "acceptance": {
            "samples_below_half": best["sample_ratio"] < 0.5,
            "agreement_at_least_98": best["agreement"] >= 0.98,
        },
    }
    out = Path(__file__).parent / "results" / "difficulty.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
