"""`limo eval`: generate on benchmarks through the generation cache, grade, and write results.

    limo eval --model smollm2-135m --benchmarks math500,aime24 --limit 20 --max-tokens 256 --out runs/ev
    limo eval --model M --benchmarks aime24,math500 --protocol limo-v3 --out DIR   # aime24: 4 @ T=0.6; math500 greedy
    limo eval ... --judge qwen2.5-32b-instruct --judge-engine openai --judge-base-url URL   # text golds

From Python (what `limo run` / experiments call): `run_eval(EvalConfig.from_dict(recipe["eval"]), out_dir)`.

A protocol (limo.eval.protocols) gives every benchmark its own (n, temperature, top_p, max_tokens, metric,
grading rule); `n` / `temperature` / `top_p` / `grading` given here override every benchmark, and `max_tokens`
caps every benchmark. results.json records, per benchmark, the protocol actually used (and the overrides).

Writes DIR/results.json (per benchmark: score with a 95% CI, pass@k, maj@k, the `boxed` score beside an
`extended` one, no-answer / boxed / truncation rates, mean and p95 response tokens, judged share; stamps: model,
engine, versions, and the producers of the samples), DIR/samples.jsonl (every response with its verdict) and
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
from limo.eval.benchmarks import BENCHMARKS, load_benchmark, prompt_messages, resolve
from limo.eval.protocols import BenchmarkProtocol, Protocol, get_protocol, protocol_from_dict
from limo.eval.results import benchmark_results, producers_summary, results_markdown


@dataclass
class EvalConfig:
    """What to evaluate and how. Sampling comes from the protocol per benchmark; fields set here override it."""

    model: str = "smollm2-135m"
    engine: EngineConfig = field(default_factory=EngineConfig)
    benchmarks: list[str] = field(default_factory=lambda: ["math500"])
    protocol: str = "greedy"
    protocols: dict[str, Any] = field(default_factory=dict)  # user-defined protocols (see limo.eval.protocols)
    n: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None  # a cap on every benchmark's protocol max_tokens
    grading: str | None = None  # override the protocol's grading rule: boxed | extended
    limit: int | None = None
    seed: int = 0
    cache: str | None = None  # generation cache (SQLite); default: the user cache
    grade_timeout_s: float = 5.0
    grade_workers: int | None = None
    judge: str | None = None  # judge model (any engine, through the cache)
    judge_engine: EngineConfig | None = None
    judge_max_tokens: int = 512  # not specified by the authors; our choice: room for "## Analysis" + verdict

    def __post_init__(self):
        if isinstance(self.engine, dict):
            from limo.config import build

            self.engine = build(EngineConfig, {"model": self.model, **self.engine}, where="eval.engine")
        if self.engine.model != self.model:
            self.engine = dataclasses.replace(self.engine, model=self.model)
        if isinstance(self.benchmarks, str):
            self.benchmarks = [b.strip() for b in self.benchmarks.split(",") if b.strip()]
        if not self.benchmarks:
            raise ValueError("benchmarks must name at least one benchmark")
        if self.n is not None and self.n < 1:
            raise ValueError("n must be >= 1")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")
        if self.limit is not None and self.limit < 1:
            raise ValueError("limit must be >= 1")
        if self.grade_workers is not None and self.grade_workers < 1:
            raise ValueError(f"grade_workers must be >= 1, got {self.grade_workers}")
        if not self.grade_timeout_s > 0:
            raise ValueError(f"grade_timeout_s must be > 0 seconds, got {self.grade_timeout_s}")
        if self.grading is not None and self.grading not in ("boxed", "extended"):
            raise LimoError(f"eval.grading (--grading): unknown grading rule {self.grading!r}; known: boxed, extended")
        if self.judge is not None and self.judge_engine is None:
            self.judge_engine = EngineConfig(model=self.judge)
        elif isinstance(self.judge_engine, dict):
            from limo.config import build

            self.judge_engine = build(
                EngineConfig, {"model": self.judge, **self.judge_engine}, where="eval.judge_engine"
            )
        self.resolved_protocol()  # unknown protocol or benchmark in a protocol: fail now

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "eval") -> EvalConfig:
        """Build from a recipe dict: model, engine (EngineConfig fields), benchmarks, protocol, protocols, ..."""
        from limo.config import build

        data = dict(data)
        engine = data.pop("engine", None)
        if isinstance(engine, str):  # `engine: hf` shorthand
            engine = {"engine": engine}
        if engine is not None and not isinstance(engine, dict):
            raise LimoError(f"{where}.engine: expected an engine name or a mapping of engine settings, got {engine!r}")
        if isinstance(data.get("benchmarks"), str):  # `benchmarks: math500,aime24` shorthand
            data["benchmarks"] = [b.strip() for b in data["benchmarks"].split(",") if b.strip()]
        cfg = build(cls, data, where=where)
        if engine is not None:
            cfg.engine = build(EngineConfig, {**engine, "model": cfg.model}, where=f"{where}.engine")
        return cfg

    def resolved_protocol(self) -> Protocol:
        user = {name: protocol_from_dict(name, spec) for name, spec in (self.protocols or {}).items()}
        proto = get_protocol(self.protocol, user)
        proto.check_benchmarks(list(BENCHMARKS))
        return proto

    def overrides(self) -> dict[str, Any]:
        given = {"n": self.n, "temperature": self.temperature, "top_p": self.top_p, "grading": self.grading}
        out = {k: v for k, v in given.items() if v is not None}
        if self.max_tokens is not None:
            out["max_tokens_cap"] = self.max_tokens
        return out

    def benchmark_protocol(self, name: str) -> BenchmarkProtocol:
        """The protocol of one benchmark after this config's overrides and max-token cap."""
        base = self.resolved_protocol().for_benchmark(name)
        changes = {k: v for k, v in self.overrides().items() if k != "max_tokens_cap"}
        if self.max_tokens is not None:
            changes["max_tokens"] = min(base.max_tokens, self.max_tokens)
        if "n" in changes and changes["n"] == 1 and base.metric != "pass@1":
            changes["metric"] = "pass@1"
        return dataclasses.replace(base, **changes)

    def sampling(self, name: str) -> SamplingParams:
        p = self.benchmark_protocol(name)
        return SamplingParams(temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_tokens, seed=self.seed)


def versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for pkg in ("limo", "transformers", "torch", "math-verify", "vllm", "llama_cpp_python", "pebble"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def _evaluate_one(engine, name: str, cfg: EvalConfig) -> tuple[list[dict], dict]:
    from limo.console import progress_bar
    from limo.grading import boxed_answer, grade_many

    spec = resolve(name)
    proto = cfg.benchmark_protocol(spec.name)
    rows = load_benchmark(name, limit=cfg.limit)
    n = proto.n
    prompts = [prompt_messages(r["problem"], multiple_choice="choices" in r) for r in rows]
    before = engine.stats.generated
    with progress_bar(len(prompts) * n, f"{spec.name}: generating") as advance:
        outputs = engine.generate(prompts, cfg.sampling(spec.name), n=n, progress=advance)
    generated = engine.stats.generated - before
    items = [(c.text, r["answer"], r.get("choices")) for r, outs in zip(rows, outputs, strict=True) for c in outs]
    with progress_bar(len(items), f"{spec.name}: grading ({proto.grading})") as advance:
        grades = grade_many(
            items, timeout_s=cfg.grade_timeout_s, workers=cfg.grade_workers, progress=advance, rule=proto.grading
        )
    samples, k = [], 0
    for r, outs in zip(rows, outputs, strict=True):
        for j, c in enumerate(outs):
            g = grades[k]
            k += 1
            failed = c.finish_reason == "error"  # refused or failed by the engine: counted apart, never graded
            samples.append(
                {
                    "benchmark": spec.name,
                    "problem_id": r["id"],
                    "sample_index": j,
                    "problem": r["problem"],
                    "answer": r["answer"],
                    "subject": r["subject"],
                    "level": r["level"],
                    "response": c.text,
                    "reasoning": c.reasoning,
                    "extracted": None if failed else g.extracted,
                    "verdict": "generation_error" if failed else g.verdict,
                    "correct": False if failed else g.correct,
                    "rule": g.rule,
                    "boxed_verdict": g.boxed_verdict if g.rule == "extended" else g.verdict,
                    "has_box": boxed_answer(c.text) is not None,
                    "completion_tokens": c.completion_tokens,
                    "prompt_tokens": c.prompt_tokens,
                    "finish_reason": c.finish_reason,
                    "error": c.error,
                    "producer": getattr(c, "producer", None),
                }
            )
    if cfg.judge:
        from limo.eval.judging import apply_judge

        apply_judge(samples, spec, cfg)
    result = benchmark_results(samples, n, seed=cfg.seed)
    result["generated"] = generated
    result["protocol"] = {
        "name": cfg.protocol,
        **dataclasses.asdict(proto),
        "source": cfg.resolved_protocol().source,
        "overrides": cfg.overrides(),
    }
    return samples, result


def print_table(results: dict) -> None:
    from rich.table import Table

    from limo.console import console

    table = Table(title=f"limo eval: {results['model']} ({results['protocol']})")
    for col in ("benchmark", "n", "T", "rule", "score", "95% CI", "boxed", "no answer", "mean tok", "trunc", "gen"):
        table.add_column(col)
    for name, b in results["benchmarks"].items():
        s, p = b["score"], b["protocol"]
        boxed = b.get("boxed_score", {}).get("value", s["value"])
        table.add_row(
            name,
            str(b["n"]),
            f"{p['temperature']:g}",
            p["grading"],
            f"{s['metric']} {100 * s['value']:.1f}",
            f"[{100 * s['ci'][0]:.1f}, {100 * s['ci'][1]:.1f}]",
            f"{100 * boxed:.1f}",
            f"{100 * b['no_answer_rate']:.1f}%",
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
    keys = [resolve(name).name for name in cfg.benchmarks]  # fail on an unknown benchmark before loading any model
    if len(set(keys)) != len(keys):
        raise LimoError(f"benchmark {next(k for k in keys if keys.count(k) > 1)!r} listed twice")
    own_engine = engine is None
    if engine is None:
        engine = make_engine(cfg.engine, cfg.cache)
    start = time.perf_counter()
    all_samples: list[dict] = []
    per_bench: dict[str, dict] = {}
    try:
        for name, key in zip(cfg.benchmarks, keys, strict=True):
            samples, result = _evaluate_one(engine, name, cfg)
            per_bench[key] = result
            all_samples.extend(samples)
    finally:
        if own_engine:
            engine.close()
    results = {
        "model": cfg.model,
        "engine": dataclasses.asdict(cfg.engine),
        "protocol": cfg.protocol,
        "limit": cfg.limit,
        "benchmarks": per_bench,
        "generation": engine.stats.to_dict(),
        "producers": producers_summary(all_samples),
        "versions": versions(),
        "judge": dataclasses.asdict(cfg.judge_engine) if cfg.judge and cfg.judge_engine else None,
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
