"""LIMO's published reasoning-chain quality formula: `score.profile: limo` (the paper's v3 weights).

What the paper says (LIMO v3, arXiv 2502.03387v3 §3.1.2, as quoted by the v3 summaries [S1]
bzhng-development/summary-of-some-paper-in-cuda docs/training-methods/LIMO-LessisMoreforReasoning.md@dae082b and [S2],
and by the authors in GAIR-NLP/LIMO issue #28; the arXiv page itself only exposes its abstract to our search tool,
see docs/QUALITY.md and docs/FIDELITY.md "Sources"):

    elaborated reasoning   30%   "lengthier, fully spelled-out logic"        -> length in words
    self-verification      20%   validation terms ("check", "verify")        -> count per word
    exploratory approach   25%   tentative markers ("perhaps", "might")      -> count per word
    adaptive granularity   25%   connective phrases ("therefore", "since")   -> count per word
    "All counts are normalized by text length to avoid bias toward longer responses."

v1 (arXiv 2502.03387v1) publishes no weights or formula: §3.3.2 describes "a hybrid approach combining rule-based
filtering and LLM-assisted curation" [S2] and its Table 1 only names the solution qualities. The `limo` profile is
therefore the v3 formula; recipes for v1 that use it say so.

Not specified by the paper; our choices:
  * the keyword lists beyond the paper's two examples per feature (below), matched case-insensitively on word
    boundaries, because the paper names examples, not the full lists;
  * how four quantities in different units are put on one scale before weighting: each raw value (words, or
    keyword hits per word) is min-max normalised over the candidates scored together (one curation run), so
    every feature spans [0, 1] in that run; a feature that is constant over the set scores 0 for every row.
    A score therefore ranks candidates within one run (which is how LIMO uses it: best solution per problem,
    then the top problems) and is not comparable across runs;
  * no truncation, structure or language features: those belong to the `extended` profile (limo.quality).

    from limo.quality_limo import limo_scores
    rows = limo_scores(texts)      # [{"features": {...}, "raw": {...}, "evidence": {...}, "score": float}, ...]
"""

from limo.quality import MAX_EVIDENCE, Span, find_spans, word_pattern

LIMO_FEATURES = ("elaborated_reasoning", "self_verification", "exploratory_approach", "adaptive_granularity")

# LIMO v3 §3.1.2: 30 / 20 / 25 / 25
LIMO_WEIGHTS: dict[str, float] = {
    "elaborated_reasoning": 0.30,
    "self_verification": 0.20,
    "exploratory_approach": 0.25,
    "adaptive_granularity": 0.25,
}


# paper's examples first; the rest is our choice (see module docstring)
VALIDATION_TERMS = word_pattern(
    r"check(?:s|ed|ing)?",
    r"verif(?:y|ies|ied|ying|ication)",
    r"double[- ]check(?:s|ed|ing)?",
    r"re-?check(?:s|ed|ing)?",
    r"confirm(?:s|ed|ing)?",
    r"validat(?:e|es|ed|ing)",
)
TENTATIVE_TERMS = word_pattern(
    r"perhaps",
    r"might",
    r"maybe",
    r"possibly",
    r"alternatively",
    r"suppose",
    r"what if",
    r"let me try",
    r"let's try",
)
CONNECTIVES = word_pattern(
    r"therefore",
    r"since",
    r"thus",
    r"hence",
    r"because",
    r"consequently",
    r"it follows",
    r"which means",
    r"this means",
    r"so that",
)

_COUNTED = {
    "self_verification": VALIDATION_TERMS,
    "exploratory_approach": TENTATIVE_TERMS,
    "adaptive_granularity": CONNECTIVES,
}


def raw_features(text: str) -> tuple[dict[str, float], dict[str, list[Span]]]:
    """The unnormalised quantities of one text: its length in words, and keyword hits per word for the three
    counted features; plus the evidence spans (character offsets of every hit, capped)."""
    words = max(len(text.split()), 1)
    raw: dict[str, float] = {"elaborated_reasoning": float(len(text.split()))}
    evidence: dict[str, list[Span]] = {"elaborated_reasoning": []}
    for name, pattern in _COUNTED.items():
        spans = find_spans(text, pattern)
        raw[name] = len(spans) / words
        evidence[name] = spans[:MAX_EVIDENCE]
    return raw, evidence


def min_max(values: list[float]) -> list[float]:
    """Scale to [0, 1] over the set; a constant set maps to 0."""
    if not values:
        return []
    lo, hi = min(values), max(values)
    if hi <= lo:
        return [0.0] * len(values)
    return [(v - lo) / (hi - lo) for v in values]


def weighted(features: dict[str, float], weights: dict[str, float]) -> float:
    """sum_k w_k * f_k / sum_k w_k (with the published weights, which sum to 1, a plain weighted sum)."""
    total = sum(weights.values())
    return sum(weights[k] * features[k] for k in weights) / total


def limo_scores(texts: list[str], weights: dict[str, float] | None = None) -> list[dict]:
    """LIMO's score for every text of one scored set (normalisation is over the set)."""
    weights = weights or LIMO_WEIGHTS
    raws, evidences = zip(*(raw_features(t) for t in texts), strict=True) if texts else ((), ())
    columns = {k: min_max([r[k] for r in raws]) for k in LIMO_FEATURES}
    out = []
    for i, (raw, evidence) in enumerate(zip(raws, evidences, strict=True)):
        features = {k: columns[k][i] for k in LIMO_FEATURES}
        out.append({"features": features, "raw": raw, "evidence": evidence, "score": weighted(features, weights)})
    return out
