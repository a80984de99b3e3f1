"""Stage 08 `score`: reasoning-quality features, a weighted rule score, an optional LLM judge, and LIMO's L1-L5.

Two named profiles (`score.profile`):

    limo       the paper's formula (LIMO v3 §3.1.2, limo.quality_limo): elaborated reasoning (length) 30%,
               self-verification 20%, exploratory approach 25%, adaptive granularity (connectives) 25%, keyword
               counts normalised by text length, each feature min-max scaled over this run's candidates
    extended   limo's own eight features (limo.quality): the four above as we read them plus length, structure,
               language consistency and truncation, each in [0, 1] per text (the default, as before)

For each verified candidate (the assistant text: `<think>reasoning</think>` + response when the reasoning was kept
apart, else the response) it adds:

    features       {feature: score in [0, 1]} of the profile
    evidence       JSON {feature: [[start, end], ...]}: character spans of the assistant text (= `response` when
                   `reasoning` is null) that triggered each feature
    rule_score     weighted mean of the features (weights: the profile's, or the recipe's `weights`)
    judge_score    1-10 from an LLM judge with a rubric prompt (null without a judge or when unparseable)
    judge_reply    the judge's full reply (null without a judge); also in STAGE_DIR/judge_replies.jsonl
    quality_score  rule_score, or (1 - judge_weight) * rule_score + judge_weight * (judge_score - 1) / 9
    quality_level  1..5 (LIMO's L1..L5), by fixed thresholds or by quintile over this run's candidates
                   (default: fixed for `extended`, quantile for `limo`, whose scores only rank within a run)

Difficulty for adaptive granularity (extended) comes from the row (1 - weak_pass_rate, else the MATH level).
No row is dropped here. Run as part of `limo curate RECIPE.yaml --out RUN` (recipe key `score`).
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from datasets import Dataset

from limo.io import write_jsonl
from limo.quality import (
    DEFAULT_WEIGHTS,
    FEATURES,
    difficulty_of,
    evidence_json,
    level_fixed,
    levels_by_quantile,
    score_text,
)
from limo.quality import rule_score as weighted_score
from limo.quality_limo import LIMO_FEATURES, LIMO_WEIGHTS, limo_scores
from limo.runs import StageContext, StageResult
from limo.stages.common import ModelSpec, to_rows
from limo.stages.solutions import assistant_text

JUDGE_REPLIES = "judge_replies.jsonl"  # in the stage dir: every judge reply, for audits
JUDGE_SYSTEM = "You are a strict grader of mathematical reasoning. You rate solutions; you never solve the problem."

# The rubric follows LIMO §3's description of a high-quality reasoning chain.
JUDGE_RUBRIC = """Rate the quality of the reasoning in the solution below on a scale from 1 to 10.
The final answer has already been checked and is correct; judge only how well the reasoning teaches.

Criteria:
1. Elaborated reasoning: every non-trivial step is explained, nothing is skipped or asserted without reason.
2. Self-verification: intermediate and final results are checked (e.g. substituted back).
3. Exploration: sensible alternatives are considered before committing; dead ends are recognised and left.
4. Adaptive granularity: easy steps are brief, hard steps get the space they need.
5. Clarity: well organised, no repetition loops, consistent language, ends with the final answer.

10 = an exemplary chain a student could learn from; 5 = correct but thin or messy; 1 = unusable.

Problem:
{problem}

Solution:
{solution}

Reply with one short sentence of justification, then a last line of the form "Score: N" (N from 1 to 10)."""


def clip_middle(text: str, max_chars: int) -> str:
    """Keep the head and tail of a long text (the judge sees how it starts and how it ends)."""
    if len(text) <= max_chars:
        return text
    half = max_chars // 2
    return text[:half] + f"\n\n[... {len(text) - 2 * half} characters omitted ...]\n\n" + text[-half:]


def judge_messages(problem: str, solution: str, max_chars: int = 12000) -> list[dict[str, str]]:
    """The chat prompt sent to the judge model."""
    return [
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": JUDGE_RUBRIC.format(problem=problem, solution=clip_middle(solution, max_chars))},
    ]


_NUM = r"(\d{1,2}(?:\.\d+)?)"
_JUDGE_PATTERNS = (
    re.compile(r"(?i)\bscore\s*(?:is|of|=|:)?\s*[*_`\[(]*\s*" + _NUM + r"(?:\s*/\s*10|\s+out of\s+10)?"),
    re.compile(r"(?i)\brating\s*(?:is|of|=|:)?\s*[*_`\[(]*\s*" + _NUM),
    re.compile(_NUM + r"\s*(?:/|out of)\s*10\b"),
    re.compile(r"^\s*[*_`\[(]*" + _NUM + r"[*_`\])]*\s*\.?\s*$", re.M),
)


def parse_judge_score(reply: str) -> float | None:
    """A 1-10 score from a judge's free-text reply, or None.

    Any `<think>…</think>` part is ignored. Tried in order, the LAST match of each wins: "Score: 8" (also
    "score is **8**", "Score: 7/10", "score of 6 out of 10"), "rating: 7", "8/10" / "8 out of 10", a line that is
    only a number. Values outside 1..10 are rejected (None), never clipped.
    """
    if not reply:
        return None
    text = reply.split("</think>")[-1]
    for pattern in _JUDGE_PATTERNS:
        matches = pattern.findall(text)
        if matches:
            value = float(matches[-1])
            return value if 1.0 <= value <= 10.0 else None
    return None


EXTENDED_THRESHOLDS = (0.52, 0.62, 0.76, 0.81)  # quintiles of the extended rule score on the Sky-T1 traces
PROFILE_FEATURES: dict[str, tuple[str, ...]] = {"limo": LIMO_FEATURES, "extended": FEATURES}
PROFILE_WEIGHTS: dict[str, dict[str, float]] = {"limo": LIMO_WEIGHTS, "extended": DEFAULT_WEIGHTS}


@dataclass
class Config:
    # not specified (a naming of ours): `limo` = the paper's formula; `extended` stays the default so existing
    # recipes keep their scores; the paper recipes set `profile: limo`
    profile: Literal["limo", "extended"] = "extended"
    weights: dict[str, float] | None = None  # default: the profile's weights
    # length feature (extended only): 0 below min words, 1 from target to max words, decaying beyond max
    length_words: list[int] = field(default_factory=lambda: [40, 300, 8000])
    judge: ModelSpec | None = None
    judge_weight: float = 0.3
    judge_max_chars: int = 12000
    levels: Literal["fixed", "quantile"] | None = None  # default: fixed for extended, quantile for limo
    # quality score cut points for L2..L5 (fixed levels); defaults = quintiles of the extended rule score on the
    # Sky-T1 traces (docs/QUALITY.md), so a level means the same thing in every run
    thresholds: list[float] = field(default_factory=lambda: list(EXTENDED_THRESHOLDS))

    def __post_init__(self):
        if self.weights is None:
            self.weights = dict(PROFILE_WEIGHTS[self.profile])
        if self.levels is None:
            self.levels = "quantile" if self.profile == "limo" else "fixed"
        known = PROFILE_FEATURES[self.profile]
        unknown = sorted(set(self.weights) - set(known))
        if unknown:
            raise ValueError(f"weights: unknown feature(s) {unknown} for profile {self.profile}; known: {list(known)}")
        if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise ValueError("weights must be >= 0 and not all 0")
        if len(self.length_words) != 3 or not 0 <= self.length_words[0] < self.length_words[1] <= self.length_words[2]:
            raise ValueError(f"length_words must be [min, target, max] increasing, got {self.length_words}")
        if not 0 <= self.judge_weight <= 1:
            raise ValueError(f"judge_weight must be in [0, 1], got {self.judge_weight}")
        if len(self.thresholds) != 4 or sorted(self.thresholds) != list(self.thresholds):
            raise ValueError(f"thresholds must be 4 increasing cut points, got {self.thresholds}")
        if self.profile == "limo" and self.levels == "fixed" and self.thresholds == list(EXTENDED_THRESHOLDS):
            raise ValueError(
                "levels: fixed with profile limo would cut limo scores at the extended profile's thresholds; "
                "use levels: quantile (limo scores rank within a run) or give thresholds"
            )


def judge_scores(
    rows: list[dict], texts: list[str], spec: ModelSpec, ctx: StageContext, max_chars: int
) -> tuple[list[float | None], list[str | None]]:
    from limo.console import progress_bar
    from limo.engines.base import make_engine

    engine = make_engine(spec.engine, ctx.generation_cache)
    prompts = [judge_messages(r["problem"], t, max_chars) for r, t in zip(rows, texts, strict=True)]
    try:
        with progress_bar(len(prompts), f"judge: {spec.name}") as advance:
            outs = engine.generate(prompts, spec.sampling, n=1, progress=advance)
    finally:
        engine.close()
    replies: list[str | None] = [o[0].text for o in outs]
    return [parse_judge_score(r or "") for r in replies], replies


def extended_rows(rows: list[dict], texts: list[str], cfg: Config) -> list[dict]:
    """features / evidence / rule_score of the `extended` profile (each text on its own)."""
    lo, target, hi = cfg.length_words
    out = []
    for row, text in zip(rows, texts, strict=True):
        feats = score_text(
            text,
            problem=row.get("problem"),
            difficulty=difficulty_of(row),
            finish_reason=row.get("finish_reason"),
            length_words=(lo, target, hi),
        )
        scores = {k: float(feats[k].score) for k in FEATURES}
        out.append(
            {
                **row,
                "features": scores,
                "evidence": evidence_json(feats),
                "rule_score": weighted_score(scores, cfg.weights),
            }
        )
    return out


def limo_rows(rows: list[dict], texts: list[str], cfg: Config) -> list[dict]:
    """features / evidence / rule_score of the `limo` profile (normalised over all candidates of the run)."""
    scored = limo_scores(texts, cfg.weights)
    return [
        {
            **row,
            "features": s["features"],
            "evidence": json.dumps({k: [list(span) for span in spans] for k, spans in s["evidence"].items()}),
            "rule_score": s["score"],
        }
        for row, s in zip(rows, scored, strict=True)
    ]


def blend(rule: float, judge: float | None, judge_weight: float) -> float:
    """The quality score: the rule score, moved towards the judge's 1-10 score (mapped to [0, 1]) by judge_weight."""
    return rule if judge is None else (1 - judge_weight) * rule + judge_weight * (judge - 1) / 9


def save_judge_replies(path: Path, rows: list[dict], judge: str) -> None:
    """STAGE_DIR/judge_replies.jsonl: one line per judged candidate, for audits (`judge_score` null = unparsable)."""
    write_jsonl(
        path,
        [
            {
                "id": r["id"],
                "candidate_id": r["candidate_id"],
                "judge": judge,
                "judge_score": r["judge_score"],
                "reply": r["judge_reply"],
            }
            for r in rows
        ],
    )


def run(ds: Dataset, cfg: Config, ctx: StageContext) -> StageResult:
    rows = to_rows(ds)
    texts = [assistant_text(r.get("reasoning"), r["response"]) for r in rows]
    out = limo_rows(rows, texts, cfg) if cfg.profile == "limo" else extended_rows(rows, texts, cfg)
    judged: list[float | None] = [None] * len(out)
    replies: list[str | None] = [None] * len(out)
    if cfg.judge is not None and out:
        judged, replies = judge_scores(rows, texts, cfg.judge, ctx, cfg.judge_max_chars)
    for row, j, reply in zip(out, judged, replies, strict=True):
        row["judge_score"] = j
        row["judge_reply"] = reply
        row["quality_score"] = blend(row["rule_score"], j, cfg.judge_weight)
    if cfg.judge is not None and out:
        save_judge_replies(ctx.stage_dir / JUDGE_REPLIES, out, cfg.judge.name)
    if cfg.levels == "quantile":
        levels = levels_by_quantile([r["quality_score"] for r in out])
    else:
        levels = [level_fixed(r["quality_score"], cfg.thresholds) for r in out]
    for row, level in zip(out, levels, strict=True):
        row["quality_level"] = int(level)
    n = max(len(out), 1)
    features = PROFILE_FEATURES[cfg.profile]
    stats = {
        "profile": cfg.profile,
        "feature_means": {k: round(sum(r["features"][k] for r in out) / n, 4) for k in features},
        "rule_score_mean": round(sum(r["rule_score"] for r in out) / n, 4),
        "levels": {f"L{lv}": sum(r["quality_level"] == lv for r in out) for lv in range(1, 6)},
        "judged": sum(j is not None for j in judged),
        "judge_unparsed": sum(j is None and reply is not None for j, reply in zip(judged, replies, strict=True)),
        "judge_replies_file": JUDGE_REPLIES if cfg.judge is not None and out else None,
    }
    return StageResult.from_rows(out, [], stats)
