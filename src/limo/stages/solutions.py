"""Stage 06 `solutions`: candidate solutions per problem, from models and from existing pool columns.

Each model in `models` (a ModelSpec: its own engine, sampling and `n` = k samples per problem) gets the LIMO
chat prompt (system prompt + problem) through the cached engine, so reruns never pay twice. Pool columns named in
`columns` (the reference `solution`, or a trace column such as OpenR1-Math / NuminaMath-CoT solutions) become
candidates as they are. The stage EXPANDS rows: one output row per candidate (stats["expands_rows"] = True):

    all problem columns + candidate_id (f"{problem_id}#{source}#{k}"), candidate_model, response, reasoning,
    finish_reason, completion_tokens

When an engine returns reasoning separately (Completion.reasoning, e.g. DeepSeek-R1's reasoning_content) it is
kept in `reasoning` and the answer part in `response`. Texts that carry the reasoning inline (`<think>...</think>`
or Sky-T1's `<|begin_of_thought|>...<|end_of_thought|>`) are split the same way when `split_thinking` is on.
Problems that get no candidate at all are dropped with drop_reason "no_candidates".

Run as part of `limo curate RECIPE.yaml --out RUN` (recipe key `solutions`).
"""

import re
from dataclasses import dataclass, field
from typing import Any

from datasets import Dataset

from limo.errors import LimoError
from limo.records import assistant_text  # noqa: F401 (defined beside chat_messages; score and export use it here)
from limo.runs import StageContext, StageResult
from limo.stages.common import ModelSpec, problem_prompt, to_rows, with_reason

THINK_PATTERNS = (
    re.compile(r"^\s*<think>(?P<reasoning>.*?)</think>(?P<response>.*)$", re.S),
    re.compile(
        r"^\s*<\|begin_of_thought\|>(?P<reasoning>.*?)<\|end_of_thought\|>\s*"
        r"(?:<\|begin_of_solution\|>)?(?P<response>.*?)(?:<\|end_of_solution\|>)?\s*$",
        re.S,
    ),
)


def split_reasoning(text: str) -> tuple[str | None, str]:
    """(reasoning, response) of a text with inline thinking tags; (None, text) when there are none."""
    for pattern in THINK_PATTERNS:
        m = pattern.match(text)
        if m:
            return m.group("reasoning").strip() or None, m.group("response").strip()
    return None, text


def approx_tokens(text: str) -> int:
    """Token estimate for texts no engine counted (pool columns): words and punctuation runs (~ BPE tokens/1.3)."""
    return len(re.findall(r"\w+|[^\w\s]", text))


@dataclass
class Config:
    # models sampled for candidates; each its own engine + sampling + n (= k samples per problem)
    models: list[ModelSpec] = field(default_factory=list)
    # pool columns whose non-empty text is one candidate each (e.g. the reference `solution`)
    columns: list[str] = field(default_factory=lambda: ["solution"])
    split_thinking: bool = True

    def __post_init__(self):
        if not self.models and not self.columns:
            raise ValueError("solutions needs at least one model or one column")
        names = [m.name for m in self.models] + [f"column:{c}" for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"candidate sources must be unique (set engine.cache_id to tell them apart): {dupes}")


def _candidate(row: dict, source: str, k: int, reasoning: str | None, response: str, finish: str, tokens: int) -> dict:
    return {
        **row,
        "candidate_id": f"{row['id']}#{source}#{k}",
        "candidate_model": source,
        "response": response,
        "reasoning": reasoning,
        "finish_reason": finish,
        "completion_tokens": int(tokens),
    }


def column_candidates(row: dict, cfg: Config) -> list[dict]:
    out = []
    for col in cfg.columns:
        if col not in row:
            raise LimoError(f"solutions.columns: the problem table has no column {col!r} (columns: {sorted(row)})")
        text = row[col]
        if not isinstance(text, str) or not text.strip():
            continue
        reasoning, response = split_reasoning(text) if cfg.split_thinking else (None, text)
        out.append(_candidate(row, f"column:{col}", 0, reasoning, response, "stop", approx_tokens(text)))
    return out


def model_candidates(
    rows: list[dict], spec: ModelSpec, ctx: StageContext, split_thinking: bool
) -> tuple[list[list[dict]], dict]:
    """k candidates per row from one model; returns (per-row candidate lists, engine stats)."""
    from limo.console import progress_bar
    from limo.engines.base import make_engine

    engine = make_engine(spec.engine, ctx.generation_cache)
    prompts: list[Any] = [problem_prompt(r["problem"]) for r in rows]
    try:
        with progress_bar(len(rows) * spec.n, f"solutions: {spec.name}") as advance:
            outs = engine.generate(prompts, spec.sampling, n=spec.n, progress=advance)
    finally:
        engine.close()
    per_row = []
    for row, completions in zip(rows, outs, strict=True):
        cands = []
        for k, c in enumerate(completions):
            reasoning, response = c.reasoning, c.text
            if reasoning is None and split_thinking:
                reasoning, response = split_reasoning(c.text)
            cands.append(_candidate(row, spec.name, k, reasoning, response, c.finish_reason, c.completion_tokens))
        per_row.append(cands)
    return per_row, engine.stats.to_dict()


def run(ds: Dataset, cfg: Config, ctx: StageContext) -> StageResult:
    rows = to_rows(ds)
    per_row: list[list[dict]] = [column_candidates(r, cfg) for r in rows]
    engine_stats = {}
    for spec in cfg.models:
        if not rows:
            break
        cands, stats = model_candidates(rows, spec, ctx, cfg.split_thinking)
        engine_stats[spec.name] = stats
        for acc, new in zip(per_row, cands, strict=True):
            acc.extend(new)
    kept = [c for cands in per_row for c in cands]
    dropped = with_reason([r for r, cands in zip(rows, per_row, strict=True) if not cands], "no_candidates")
    by_source: dict[str, int] = {}
    for c in kept:
        by_source[c["candidate_model"]] = by_source.get(c["candidate_model"], 0) + 1
    stats = {
        "expands_rows": True,
        "problems": len(rows),
        "candidates": len(kept),
        "candidates_by_source": dict(sorted(by_source.items())),
        "with_reasoning": sum(c["reasoning"] is not None for c in kept),
        "engines": engine_stats,
    }
    return StageResult.from_rows(kept, dropped, stats)
