"""`limo eval`: generate on benchmarks through the generation cache, grade, and write results.

    limo eval --model smollm2-135m --engine hf --benchmarks math500,aime24 --limit 20 --max-tokens 256 --out runs/ev
    limo eval --model M --benchmarks aime24,amc23 --protocol paper-sampled --out DIR     # 16 samples, T=0.7

From Python (what `limo run` / experiments call): `run_eval(EvalConfig.from_dict(recipe["eval"]), out_dir)`.

Writes DIR/results.json (per benchmark: problems, samples per problem, greedy pass@1 or avg@n, unbiased pass@k for
k = 1, 2, 4, ..., n, maj@k, a 95% CI for each, mean/p95 completion tokens, truncation rate, breakdown by subject
and level; stamps: model, engine, sampling, versions), DIR/samples.jsonl (every response with its verdict) and
DIR/results.md. A rerun with the same settings is answered from the cache: no new generations.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from limo.engines.base import EngineConfig, SamplingParams
from limo.errors import LimoError
from limo.eval.benchmarks import PAPER_MAX_TOKENS, PROTOCOLS, load_benchmark, prompt_messages, resolve
from limo.eval.metrics import mean, percentile, problem_metrics, score_block


@dataclass
class EvalConfig:
    """What to evaluate and how. `n`/`temperature`/`top_p` left None come from the protocol."""

    model: str = "smollm2-135m"
    engine: EngineConfig = field(default_factory=EngineConfig)
    benchmarks: list[str] = field(default_factory=lambda: ["math500"])
    protocol: str = "greedy"
    n: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int = PAPER_MAX_TOKENS  # LIMO §4: up to 32768 output tokens
    limit: int | None = None
    seed: int = 0
    cache: str | None = None  # generation cache (SQLite); default: the user cache
    grade_timeout_s: float = 5.0
    grade_workers: int | None = None

    def __post_init__(self):
        if isinstance(self.engine, dict):
            from limo.recipes import build

            self.engine = build(EngineConfig, {"model": self.model, **self.engine}, where="eval.engine")
        if self.engine.model != self.model:
            self.engine = dataclasses.replace(self.engine, model=self.model)
        if isinstance(self.benchmarks, str):
            self.benchmarks = [b.strip() for b in self.benchmarks.split(",") if b.strip()]
        if not self.benchmarks:
            raise ValueError("benchmarks must name at least one benchmark")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; known: {sorted(PROTOCOLS)}")
        if self.n is not None and self.n < 1:
            raise ValueError("n must be >= 1")
        if self.limit is not None and self.limit < 1:
            raise ValueError("limit must be >= 1")

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "eval") -> EvalConfig:
        """Build from a recipe dict: model, engine (EngineConfig fields), benchmarks, n, temperature, ..."""
        from limo.recipes import build

        data = dict(data)
        engine = data.pop("engine", None)
        if isinstance(engine, str):  # `engine: hf` shorthand
            engine = {"engine": engine}
        cfg = build(cls, data, where=where)
        if engine is not None:
            cfg.engine = build(EngineConfig, {**engine, "model": cfg.model}, where=f"{where}.engine")
        return cfg

    @property
    def n_samples(self) -> int:
        return self.n if self.n is not None else PROTOCOLS[self.protocol].n

    def sampling(self) -> SamplingParams:
        proto = PROTOCOLS[self.protocol]
        temperature = self.temperature if self.temperature is not None else proto.temperature
        top_p = self.top_p if self.top_p is not None else proto.top_p
        return SamplingParams(temperature=temperature, top_p=top_p, max_tokens=self.max_tokens, seed=self.seed)


def versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for pkg in ("limo", "transformers", "torch", "math-verify", "vllm"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


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


def benchmark_results(samples: list[dict], n: int, seed: int = 0) -> dict:
    """Every number of one benchmark, computed from its sample records alone (so tests can recompute them)."""
    by_problem: dict[str, list[dict]] = {}
    for s in samples:
        by_problem.setdefault(s["problem_id"], []).append(s)
    ordered = [sorted(v, key=lambda s: s["sample_index"]) for v in by_problem.values()]
    correct = [[s["correct"] for s in v] for v in ordered]
    answers = [[s["extracted"] for s in v] for v in ordered]
    out = problem_metrics(correct, answers, seed=seed)
    tokens = [s["completion_tokens"] for s in samples]
    verdicts: dict[str, int] = {}
    for s in samples:
        verdicts[s["verdict"]] = verdicts.get(s["verdict"], 0) + 1
    out.update(
        {
            "samples": len(samples),
            "samples_per_problem": n,
            "mean_completion_tokens": mean(tokens),
            "p95_completion_tokens": percentile(tokens, 95),
            "truncation_rate": mean([1.0 if s["finish_reason"] == "length" else 0.0 for s in samples]),
            "truncation": score_block(
                [mean([1.0 if s["finish_reason"] == "length" else 0.0 for s in v]) for v in ordered],
                binary_single=(n == 1),
                seed=seed,
            ),
            "verdicts": verdicts,
            "by_subject": _breakdown(samples, "subject"),
            "by_level": _breakdown(samples, "level"),
        }
    )
    return out


def _evaluate_one(engine, name: str, cfg: EvalConfig, sampling: SamplingParams) -> tuple[list[dict], dict]:
    from limo.console import progress_bar
    from limo.grading import grade_many

    spec = resolve(name)
    rows = load_benchmark(name, limit=cfg.limit)
    n = cfg.n_samples
    prompts = [prompt_messages(r["problem"]) for r in rows]
    before = engine.stats.generated
    with progress_bar(len(prompts) * n, f"{spec.name}: generating") as advance:
        outputs = engine.generate(prompts, sampling, n=n, progress=advance)
    generated = engine.stats.generated - before
    items = [(c.text, r["answer"]) for r, outs in zip(rows, outputs, strict=True) for c in outs]
    with progress_bar(len(items), f"{spec.name}: grading") as advance:
        grades = grade_many(items, timeout_s=cfg.grade_timeout_s, workers=cfg.grade_workers, progress=advance)
    samples, k = [], 0
    for r, outs in zip(rows, outputs, strict=True):
        for j, c in enumerate(outs):
            g = grades[k]
            k += 1
            samples.append(
                {
                    "benchmark": spec.name,
                    "problem_id": r["id"],
                    "sample_index": j,
                    "answer": r["answer"],
                    "subject": r["subject"],
                    "level": r["level"],
                    "response": c.text,
                    "reasoning": c.reasoning,
                    "extracted": g.extracted,
                    "verdict": g.verdict,
                    "correct": g.correct,
                    "completion_tokens": c.completion_tokens,
                    "prompt_tokens": c.prompt_tokens,
                    "finish_reason": c.finish_reason,
                }
            )
    result = benchmark_results(samples, n, seed=cfg.seed)
    result["generated"] = generated
    result["paper_protocol"] = spec.paper_protocol  # what the LIMO paper reports for this benchmark
    return samples, result


def results_markdown(results: dict) -> str:
    lines = [
        f"# Evaluation: {results['model']}",
        "",
        f"engine `{results['engine']['engine']}`, protocol `{results['protocol']}`, sampling `{results['sampling']}`",
        "",
        "| benchmark | problems | n | score | 95% CI | pass@k (max k) | maj@n | mean tok | p95 tok | truncated |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, b in results["benchmarks"].items():
        s = b["score"]
        kmax = max(b["pass@k"], key=int) if b["pass@k"] else "1"
        pk = b["pass@k"].get(kmax, {}).get("value", s["value"])
        maj = b["maj@k"].get(str(b["n"]), {}).get("value") if b["maj@k"] else None
        lines.append(
            f"| {name} | {b['problems']} | {b['n']} | {s['metric']} {100 * s['value']:.1f} | "
            f"[{100 * s['ci'][0]:.1f}, {100 * s['ci'][1]:.1f}] | pass@{kmax} {100 * pk:.1f} | "
            f"{'-' if maj is None else f'{100 * maj:.1f}'} | {b['mean_completion_tokens']:.0f} | "
            f"{b['p95_completion_tokens']:.0f} | {100 * b['truncation_rate']:.1f}% |"
        )
    lines.append("")
    lines.append("CIs: Wilson score interval for greedy pass@1; seeded percentile bootstrap over problems otherwise.")
    return "\n".join(lines) + "\n"


def print_table(results: dict) -> None:
    from rich.table import Table

    from limo.console import console

    table = Table(title=f"limo eval: {results['model']} ({results['protocol']})")
    for col in ("benchmark", "problems", "n", "score", "95% CI", "maj@n", "mean tok", "truncated", "generated"):
        table.add_column(col)
    for name, b in results["benchmarks"].items():
        s = b["score"]
        maj = b["maj@k"].get(str(b["n"]), {}).get("value") if b["maj@k"] else None
        table.add_row(
            name,
            str(b["problems"]),
            str(b["n"]),
            f"{s['metric']} {100 * s['value']:.1f}",
            f"[{100 * s['ci'][0]:.1f}, {100 * s['ci'][1]:.1f}]",
            "-" if maj is None else f"{100 * maj:.1f}",
            f"{b['mean_completion_tokens']:.0f}",
            f"{100 * b['truncation_rate']:.1f}%",
            str(b["generated"]),
        )
    console.print(table)


def run_eval(cfg: EvalConfig, out_dir: str | Path, engine=None) -> dict:
    """Evaluate `cfg` and write DIR/results.json, DIR/samples.jsonl, DIR/results.md. Returns the results dict.

    `engine` (a CachedEngine) may be passed in to reuse a loaded model; otherwise one is made from cfg.engine.
    """
    from limo.engines import make_engine
    from limo.io import atomic_write_text, write_json, write_jsonl

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in cfg.benchmarks:
        resolve(name)  # fail on an unknown benchmark before loading any model
    own_engine = engine is None
    if engine is None:
        engine = make_engine(cfg.engine, cfg.cache)
    sampling = cfg.sampling()
    start = time.perf_counter()
    all_samples: list[dict] = []
    per_bench: dict[str, dict] = {}
    try:
        for name in cfg.benchmarks:
            samples, result = _evaluate_one(engine, name, cfg, sampling)
            key = resolve(name).name
            if key in per_bench:
                raise LimoError(f"benchmark {key!r} listed twice")
            per_bench[key] = result
            all_samples.extend(samples)
    finally:
        if own_engine:
            engine.close()
    results = {
        "model": cfg.model,
        "engine": dataclasses.asdict(cfg.engine),
        "protocol": cfg.protocol,
        "samples_per_problem": cfg.n_samples,
        "sampling": dataclasses.asdict(sampling),
        "limit": cfg.limit,
        "benchmarks": per_bench,
        "generation": engine.stats.to_dict(),
        "versions": versions(),
        "ci_methods": {
            "wilson": "Wilson score interval, 95% (greedy pass@1: one binary outcome per problem)",
            "bootstrap": f"percentile bootstrap over problems, 2000 resamples, seed {cfg.seed}, 95%",
        },
        "wall_seconds": round(time.perf_counter() - start, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_jsonl(out_dir / "samples.jsonl", all_samples)
    write_json(out_dir / "results.json", results)
    atomic_write_text(out_dir / "results.md", results_markdown(results))
    print_table(results)
    return results
