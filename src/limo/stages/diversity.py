"""Stage 05 `diversity`: choose the final problem set of `target_size` (LIMO: 817), seeded and stratified.

Strata are subject x difficulty. Difficulty is the MATH level where rows have one, else a pass-rate bin (tier-2
`strong_pass_rate`, else tier-1 `weak_pass_rate`), else "any". A pool whose rows mostly lack a subject is
clustered instead: problem embeddings when `embedding_model` is set (mean-pooled hidden states of a
transformers model), else TF-IDF + k-means (scikit-learn); the cluster stands in for the subject.
Allocation is `proportional` (largest remainder; keeps the pool's mix) or `balanced` (equal per stratum, capped by
stratum size, leftovers redistributed). Rows not chosen are dropped with drop_reason "not_sampled"; every row
gets `stratum`.

    diversity: {target_size: 817, allocation: proportional, n_clusters: 20}
"""

import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal

from datasets import Dataset

from limo.console import progress_bar
from limo.runs import StageContext, StageResult
from limo.stages.common import to_rows, with_reason


@dataclass
class Config:
    enabled: bool = True
    target_size: int = 817  # LIMO §2: the final LIMO set has 817 problems
    allocation: Literal["proportional", "balanced"] = "proportional"
    pass_rate_bins: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75])  # lower bin edges
    min_labelled: float = 0.5  # cluster when fewer rows than this fraction have a subject
    n_clusters: int = 20
    embedding_model: str | None = None  # a transformers model (alias, hub id or dir); None = TF-IDF
    seed: int = 0

    def __post_init__(self):
        if self.target_size < 1:
            raise ValueError("target_size must be >= 1")
        if self.n_clusters < 1:
            raise ValueError("n_clusters must be >= 1")


def _bin(rate: float, edges: list[float]) -> str:
    lower = max((e for e in edges if e <= rate), default=edges[0])
    return f"pass>={lower:g}"


def difficulty_label(row: dict, edges: list[float]) -> str:
    if row.get("level") is not None:
        return f"L{row['level']}"
    for col in ("strong_pass_rate", "weak_pass_rate"):
        if row.get(col) is not None:
            return _bin(float(row[col]), edges)
    return "any"


def embed(texts: list[str], model_name: str, batch_size: int = 16):
    """Mean-pooled last hidden states (L2-normalised) of a transformers model."""
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    from limo.engines.hf import local_model_dir

    path = local_model_dir(model_name)
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModel.from_pretrained(path).eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            enc = tok(
                texts[start : start + batch_size], return_tensors="pt", padding=True, truncation=True, max_length=256
            )
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            vec = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out.append(torch.nn.functional.normalize(vec, dim=-1).float().numpy())
    return np.concatenate(out)


def cluster(texts: list[str], cfg: Config) -> list[int]:
    """Cluster ids: k-means on embeddings or TF-IDF vectors."""
    from sklearn.cluster import KMeans

    k = min(cfg.n_clusters, len(texts))
    if k <= 1:
        return [0] * len(texts)
    if cfg.embedding_model:
        vectors = embed(texts, cfg.embedding_model)
    else:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectors = TfidfVectorizer(max_features=20000, sublinear_tf=True, stop_words="english").fit_transform(texts)
    return KMeans(n_clusters=k, random_state=cfg.seed, n_init=3).fit_predict(vectors).tolist()


def allocate(sizes: dict[str, int], target: int, how: str) -> dict[str, int]:
    """How many rows to take from each stratum (sums to min(target, total))."""
    total = sum(sizes.values())
    target = min(target, total)
    if how == "proportional":
        exact = {s: target * n / total for s, n in sizes.items()}
        quota = {s: int(v) for s, v in exact.items()}
        left = target - sum(quota.values())
        for s in sorted(exact, key=lambda s: (-(exact[s] - quota[s]), s))[:left]:
            quota[s] += 1
        return quota
    quota = dict.fromkeys(sizes, 0)
    left = target
    while left > 0:
        open_strata = sorted(s for s in sizes if quota[s] < sizes[s])
        share = max(1, left // len(open_strata))
        for s in open_strata:
            take = min(share, sizes[s] - quota[s], left)
            quota[s] += take
            left -= take
            if left == 0:
                break
    return quota


def run(ds: Dataset, cfg: Config, ctx: StageContext) -> StageResult:
    rows = to_rows(ds)
    if not cfg.enabled or not rows:
        return StageResult.from_rows(rows, [], {"enabled": cfg.enabled})
    labelled = sum(1 for r in rows if r.get("subject"))
    clustered = labelled < cfg.min_labelled * len(rows)
    with progress_bar(len(rows), "diversity: strata") as advance:
        if clustered:
            groups = [f"cluster-{c}" for c in cluster([r["problem"] for r in rows], cfg)]
        else:
            groups = [r.get("subject") or "unknown" for r in rows]
        strata: dict[str, list[int]] = defaultdict(list)
        for i, (r, g) in enumerate(zip(rows, groups, strict=True)):
            r["stratum"] = f"{g} | {difficulty_label(r, cfg.pass_rate_bins)}"
            strata[r["stratum"]].append(i)
            advance(1)
    quota = allocate({s: len(ix) for s, ix in strata.items()}, cfg.target_size, cfg.allocation)
    rng = random.Random(cfg.seed)
    chosen: set[int] = set()
    for s in sorted(strata):
        chosen.update(rng.sample(strata[s], quota[s]))
    kept = [r for i, r in enumerate(rows) if i in chosen]
    dropped = with_reason([r for i, r in enumerate(rows) if i not in chosen], "not_sampled")
    stats = {"clustered": clustered, "strata": len(strata), "quota": dict(sorted(quota.items()))}
    return StageResult.from_rows(kept, dropped, stats)
