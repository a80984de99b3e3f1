"""Reasoning-quality features of a solution text (`score.profile: extended`), each a small function returning a
score and its evidence.

LIMO (v3 §3.1.2) keeps the solutions that show elaborated reasoning, self-verification, an exploratory approach
and adaptive granularity, scored by a weighted rule system over keyword frequencies normalised by length; that
formula as published is limo.quality_limo (`score.profile: limo`). This module is limo's own reading of those four
qualities, one function each, plus four hygiene features (length, structure, language consistency, truncation),
each scored per text in [0, 1]. Every feature returns a `Feature`:

    score     a float in [0, 1], higher is better (for `truncation`: 1 = finished, 0 = cut off)
    evidence  the [start, end) character spans of `text` that triggered it (shown on the review page)
    detail    the raw counts behind the score (for the data card and debugging)

Use:

    from limo.quality import score_text, rule_score
    feats = score_text(text, problem=problem, difficulty=0.8)
    rule_score({k: f.score for k, f in feats.items()}, DEFAULT_WEIGHTS)

`python -m limo.quality FILE.jsonl [--field trace]` prints the features of each row's text (quick look).
Nothing here runs model output: it is only matched with regular expressions.
"""

import json
import math
import re
import sys
from dataclasses import dataclass, field

Span = tuple[int, int]

FEATURES = (
    "self_verification",
    "exploration",
    "adaptive_granularity",
    "elaboration",
    "length",
    "structure",
    "language_consistency",
    "truncation",
)

# The extended profile's weights: LIMO v3 §3.1.2's 30 / 20 / 25 / 25 (limo.quality_limo) on our four readings of
# its qualities; the hygiene features are ours; truncation weighs most because a cut-off chain teaches the model
# to stop mid-thought.
DEFAULT_WEIGHTS: dict[str, float] = {
    "elaboration": 0.30,
    "self_verification": 0.20,
    "exploration": 0.25,
    "adaptive_granularity": 0.25,
    "length": 0.20,
    "structure": 0.15,
    "language_consistency": 0.10,
    "truncation": 0.60,
}

MAX_EVIDENCE = 40  # spans kept per feature


@dataclass
class Feature:
    score: float
    evidence: list[Span] = field(default_factory=list)
    detail: dict[str, float] = field(default_factory=dict)


def _words(text: str) -> int:
    return len(text.split())


def saturate(x: float, half: float) -> float:
    """x / (x + half): 0 at 0, 0.5 at `half`, -> 1 for large x."""
    return x / (x + half) if x > 0 else 0.0


def find_spans(text: str, pattern: re.Pattern) -> list[Span]:
    return [(m.start(), m.end()) for m in pattern.finditer(text)]


def word_pattern(*alternatives: str) -> re.Pattern:
    """A case-insensitive regex matching any of `alternatives` as whole words."""
    return re.compile(r"(?i)\b(?:" + "|".join(alternatives) + r")\b")


SELF_VERIFICATION = word_pattern(
    r"let(?:'s| me| us) (?:double[- ])?(?:verify|check|confirm|re-?check|make sure|test|plug)",
    r"double[- ]check(?:ing|ed)?",
    r"sanity check",
    r"to (?:verify|confirm|check)",
    r"verif(?:y|ying|ied|ication)",
    r"(?:plug(?:ging)?|substitut(?:e|ing)|put(?:ting)?) (?:\S+ ){0,3}back",
    r"check(?:ing)? (?:if|whether|that|this|the|my|our|it)",
    r"which (?:matches|is consistent|agrees|checks out)",
    r"(?:that|this|it) checks out",
    r"is (?:indeed|correct)",
)

EXPLORATION = word_pattern(
    r"alternatively",
    r"another (?:approach|way|method|idea|strategy|possibility)",
    r"a different (?:approach|way|method|strategy)",
    r"on second thought",
    r"wait",
    r"hmm+",
    r"let me (?:try|think|reconsider|rethink|re-?examine)",
    r"maybe (?:i|we) (?:can|should|could)",
    r"perhaps",
    r"(?:instead|what if)",
    r"that (?:doesn't|does not|can't|cannot) be right",
    r"i (?:made a mistake|must have made)",
)

ELABORATION = word_pattern(
    r"because",
    r"since",
    r"this (?:means|implies|gives|shows)",
    r"which (?:means|implies|gives)",
    r"so that",
    r"in other words",
    r"the reason",
    r"that(?:'s| is) why",
    r"therefore",
    r"thus",
    r"hence",
    r"it follows",
    r"note that",
    r"due to",
)

STEP_MARKER = re.compile(
    r"(?im)^\s*(?:(?:step\s*\d+)|(?:\d+[.)]\s)|(?:[-*]\s)|(?:\*\*[^*\n]{2,60}\*\*)|(?:#+\s)"
    r"|(?:first(?:ly)?|second(?:ly)?|next|then|finally|now)\b)"
)
FINAL_ANSWER = re.compile(r"\\(?:boxed|fbox)\s*\{|(?i:\bfinal answer\b)|(?i:\bthe answer is\b)")
DISPLAY_MATH = re.compile(r"\\\[|\$\$|\\begin\{(?:align|equation|gather)")
CLEAN_END = set(".!?)]}$>*")


def final_answers(text: str) -> list[Span]:
    """Final-answer markers (\\boxed, "final answer", "the answer is") in the closing part of the text: the last
    30% of it, or the last 300 characters when that is more (a two-line solution boxes its answer mid-text)."""
    start = len(text) - max(0.3 * len(text), 300.0)
    return [s for s in find_spans(text, FINAL_ANSWER) if s[0] >= start]


def self_verification(text: str) -> Feature:
    """Re-checks of intermediate or final results: "let me verify", "double-check", substituting back,
    "which matches". Score saturates with the number of checks (2 checks -> 0.5), since one good check
    at the end is worth much, the tenth little."""
    spans = find_spans(text, SELF_VERIFICATION)
    return Feature(saturate(len(spans), 2.0), spans[:MAX_EVIDENCE], {"count": len(spans)})


def exploration(text: str, runaway_per_1k_words: float = 25.0) -> Feature:
    """Trying more than one route: "alternatively", "another approach", backtracking ("wait", "hmm",
    "that can't be right"). Saturates with the count (4 -> 0.5); a runaway density (more than
    `runaway_per_1k_words` markers per 1000 words, the signature of a model stuck in a wait-loop) is scaled
    down by runaway/density."""
    spans = find_spans(text, EXPLORATION)
    density = 1000.0 * len(spans) / max(_words(text), 1)
    score = saturate(len(spans), 4.0)
    if density > runaway_per_1k_words:
        score *= runaway_per_1k_words / density
    return Feature(score, spans[:MAX_EVIDENCE], {"count": len(spans), "per_1k_words": round(density, 2)})


def elaboration(text: str) -> Feature:
    """Explanations of why: "because", "since", "this means", "therefore". Scored by density (markers per
    100 words, 1 per 100 words -> 0.5), so long texts do not win by length alone."""
    spans = find_spans(text, ELABORATION)
    per_100 = 100.0 * len(spans) / max(_words(text), 1)
    return Feature(saturate(per_100, 1.0), spans[:MAX_EVIDENCE], {"count": len(spans), "per_100_words": per_100})


def split_steps(text: str) -> list[Span]:
    """Spans of the reasoning steps: paragraphs separated by blank lines (lines, if there are no blank lines)."""
    sep = re.compile(r"\n\s*\n") if re.search(r"\n\s*\n", text) else re.compile(r"\n")
    steps, start = [], 0
    for m in sep.finditer(text):
        if text[start : m.start()].strip():
            steps.append((start, m.start()))
        start = m.end()
    if text[start:].strip():
        steps.append((start, len(text)))
    return steps


def adaptive_granularity(text: str, difficulty: float = 0.5) -> Feature:
    """Step density against problem difficulty (LIMO §3: easy parts briefly, time on the complex parts).

    Two halves, averaged:
      * budget: the number of steps against what the difficulty calls for, expected = 6 + 54 * difficulty
        (difficulty in [0, 1]); 1.0 within a factor of 2 of expected, falling off on a log scale beyond.
      * unevenness: the coefficient of variation of step lengths, cv / 0.8 capped at 1. A chain that spends
        the same effort on every step (a flat list, or a loop repeating one step) is not adapting.
    Evidence: the three longest steps, i.e. where the text spent its time.
    """
    difficulty = min(max(difficulty, 0.0), 1.0)
    steps = split_steps(text)
    if not steps:
        return Feature(0.0, [], {"steps": 0})
    expected = 6.0 + 54.0 * difficulty
    ratio = abs(math.log(len(steps) / expected))
    budget = 1.0 if ratio <= math.log(2) else max(0.0, 1.0 - (ratio - math.log(2)) / math.log(8))
    lengths = [e - s for s, e in steps]
    mean = sum(lengths) / len(lengths)
    cv = (sum((x - mean) ** 2 for x in lengths) / len(lengths)) ** 0.5 / mean if len(lengths) > 1 else 0.0
    uneven = min(cv / 0.8, 1.0)
    longest = sorted(steps, key=lambda s: s[0] - s[1])[:3]
    return Feature(
        0.5 * budget + 0.5 * uneven,
        sorted(longest),
        {"steps": len(steps), "expected_steps": round(expected, 1), "cv": round(cv, 3)},
    )


def length(text: str, min_words: int = 40, target_words: int = 300, max_words: int = 8000) -> Feature:
    """Length in words: 0 below `min_words`, rising linearly to 1 at `target_words`, 1 up to `max_words`, then
    halving every further `max_words` (LIMO keeps long chains, but a 30k-word loop is not a better teacher)."""
    n = _words(text)
    if n <= min_words:
        score = 0.0
    elif n < target_words:
        score = (n - min_words) / (target_words - min_words)
    elif n <= max_words:
        score = 1.0
    else:
        score = 0.5 ** ((n - max_words) / max_words)
    return Feature(score, [], {"words": n})


def structure(text: str) -> Feature:
    """Readable layout, the mean of four parts: paragraphs (saturating, 5 -> 0.5), step markers ("First",
    "Step 2", lists, bold headings; 3 -> 0.5), display math present, and a stated final answer (\\boxed or
    "final answer") near the end (`final_answers`). Evidence: the step markers and the final-answer marker."""
    paragraphs = len(split_steps(text))
    markers = find_spans(text, STEP_MARKER)
    display = bool(DISPLAY_MATH.search(text))
    finals = final_answers(text)
    score = (saturate(paragraphs, 5) + saturate(len(markers), 3) + float(display) + float(bool(finals))) / 4
    evidence = [(s + len(text[s:e]) - len(text[s:e].lstrip()), e) for s, e in markers[: MAX_EVIDENCE - 1]]
    evidence += finals[-1:]
    return Feature(score, evidence, {"paragraphs": paragraphs, "step_markers": len(markers), "final": len(finals)})


SCRIPTS = {
    "latin": re.compile(r"[A-Za-z\u00c0-\u024f]"),
    "cjk": re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]"),
    "cyrillic": re.compile(r"[\u0400-\u04ff]"),
    "arabic": re.compile(r"[\u0600-\u06ff]"),
}


def dominant_script(text: str) -> str | None:
    counts = {name: len(rx.findall(text)) for name, rx in SCRIPTS.items()}
    best = max(counts, key=lambda k: counts[k])
    return best if counts[best] else None


def language_consistency(text: str, problem: str | None = None) -> Feature:
    """Share of letters written in the problem's script (the text's own dominant script when no problem is
    given). LaTeX commands are ignored; Greek is never counted (it is maths). Evidence: runs of other scripts
    (e.g. a Chinese aside in an English solution, a known failure of R1-style models)."""
    stripped = re.sub(r"\\[A-Za-z]+", lambda m: " " * len(m.group()), text)
    script = dominant_script(problem or "") or dominant_script(stripped)
    if script is None:
        return Feature(1.0, [], {"letters": 0})
    own = len(SCRIPTS[script].findall(stripped))
    others = [name for name in SCRIPTS if name != script]
    other_rx = re.compile("(?:" + "|".join(SCRIPTS[n].pattern for n in others) + ")+")
    spans = find_spans(stripped, other_rx)
    foreign = sum(e - s for s, e in spans)
    total = own + foreign
    score = own / total if total else 1.0
    return Feature(score, spans[:MAX_EVIDENCE], {"script": script, "foreign_chars": foreign})  # type: ignore[dict-item]


def _norm_line(line: str) -> str:
    return re.sub(r"\s+", " ", line.strip().lower())


def tail_repetition(text: str, tail_lines: int = 30) -> float:
    """Share of the last `tail_lines` non-blank lines that already appeared earlier in the text (a loop)."""
    lines = [_norm_line(x) for x in text.splitlines() if len(x.strip()) > 3]
    if len(lines) < 4:
        return 0.0
    tail = lines[-tail_lines:]
    head = lines[: len(lines) - len(tail)]
    seen = set(head)
    repeated = 0
    for line in tail:
        if line in seen:
            repeated += 1
        seen.add(line)
    return repeated / len(tail)


def truncation(text: str, finish_reason: str | None = None) -> Feature:
    """1.0 = finished, 0.0 = cut off. finish_reason "length" is a cut-off outright. Otherwise the mean-weighted
    evidence of an ending: a final answer (\\boxed / "final answer") near the end (`final_answers`, weight 0.5),
    a clean last character (sentence or formula end, weight 0.25), and no repetition loop in the last 30 lines
    (weight 0.25; loops are what runs into the token limit). Evidence: the last 200 characters when the
    ending looks cut off, else the final-answer marker."""
    tail_span = (max(0, len(text.rstrip()) - 200), len(text.rstrip()))
    if finish_reason == "length":
        return Feature(0.0, [tail_span], {"finish_reason_length": 1})
    finals = final_answers(text)
    stripped = text.rstrip()
    clean = bool(stripped) and stripped[-1] in CLEAN_END
    rep = tail_repetition(text)
    score = 0.5 * bool(finals) + 0.25 * clean + 0.25 * (1.0 - rep)
    evidence = finals[-1:] if score >= 0.75 else [tail_span]
    return Feature(
        score, evidence, {"final_answer": float(bool(finals)), "clean_end": float(clean), "tail_repeat": rep}
    )


def score_text(
    text: str,
    problem: str | None = None,
    difficulty: float = 0.5,
    finish_reason: str | None = None,
    length_words: tuple[int, int, int] = (40, 300, 8000),
) -> dict[str, Feature]:
    """All features of one solution text."""
    lo, target, hi = length_words
    return {
        "self_verification": self_verification(text),
        "exploration": exploration(text),
        "adaptive_granularity": adaptive_granularity(text, difficulty),
        "elaboration": elaboration(text),
        "length": length(text, lo, target, hi),
        "structure": structure(text),
        "language_consistency": language_consistency(text, problem),
        "truncation": truncation(text, finish_reason),
    }


def rule_score(scores: dict[str, float], weights: dict[str, float]) -> float:
    """Weighted mean of feature scores (weights need not sum to 1; features without a weight count 0)."""
    total = sum(w for k, w in weights.items() if k in scores)
    if total <= 0:
        raise ValueError("rule_score: the weights of the scored features sum to 0")
    return sum(scores[k] * w for k, w in weights.items() if k in scores) / total


def evidence_json(features: dict[str, Feature]) -> str:
    return json.dumps({k: [list(s) for s in f.evidence] for k, f in features.items()})


def difficulty_of(row: dict) -> float:
    """A difficulty in [0, 1] from whatever a row carries: 1 - weak_pass_rate (difficulty stage), else the MATH
    level (1..5 -> 0..1), else 0.5."""
    rate = row.get("weak_pass_rate")
    if isinstance(rate, (int, float)) and not isinstance(rate, bool) and not math.isnan(rate):
        return 1.0 - float(rate)
    level = row.get("level")
    if isinstance(level, int) and not isinstance(level, bool) and 1 <= level <= 5:
        return (level - 1) / 4
    return 0.5


# ---- quality levels ----------------------------------------------------------------------------------------


def level_fixed(score: float, thresholds: list[float]) -> int:
    """L1..L5 from fixed cut points (4 increasing thresholds): below the first -> 1, at/above the last -> 5."""
    return 1 + sum(score >= t for t in thresholds)


def levels_by_quantile(scores: list[float]) -> list[int]:
    """L1..L5 by rank: each level holds a fifth of the rows (ties share the lower rank's level)."""
    if not scores:
        return []
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    levels = [0] * len(scores)
    rank_of_value: dict[float, int] = {}
    for rank, i in enumerate(order):
        rank_of_value.setdefault(scores[i], rank)
    n = len(scores)
    for i, s in enumerate(scores):
        levels[i] = min(5, 1 + (5 * rank_of_value[s]) // n)
    return levels


def main(argv: list[str]) -> None:
    from limo.io import read_jsonl

    path = argv[0]
    fld = argv[argv.index("--field") + 1] if "--field" in argv else "trace"
    for row in read_jsonl(path):
        feats = score_text(row[fld], problem=row.get("problem"), difficulty=difficulty_of(row))
        scores = {k: round(f.score, 3) for k, f in feats.items()}
        print(row.get("id"), round(rule_score(scores, DEFAULT_WEIGHTS), 3), scores)


if __name__ == "__main__":
    main(sys.argv[1:])
