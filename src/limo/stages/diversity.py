"""Stage 05 `diversity`: choose the final problem set of `target_size` (LIMO: 817), seeded and stratified.

Strata are subject x difficulty. Difficulty is the MATH level where rows have one, else a pass-rate bin (tier-2
`strong_pass_rate`, else tier-1 `weak_pass_rate`), else "any". A pool whose rows mostly lack a subject is
clustered instead: problem embeddings when `embedding_model` is set (mean-pooled hidden states of a
transformers model), else TF-IDF + k-means (scikit-learn); the cluster stands in for the subject.
Allocation is `proportional` (largest remainder; keeps the pool's mix) or `balanced` (equal per stratum, capped by
stratum size, leftovers redistributed). Rows not chosen are dropped with drop_reason "not_sampled"; every row
gets `stratum`.

Streaming: the driver keeps one stratum code per row and the counts per stratum (pass 1), draws the seeded sample
per stratum, then filters the input shard by shard (pass 2). Clusters are fitted on a seeded sample of at most
`cluster_sample` problems (all of them in smaller pools) and applied batch by batch.

    diversity: {target_size: 817, allocation: proportional, n_clusters: 20}
"""

import random
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from limo.console import progress_bar
from limo.records import DROP_REASON
from limo.runs import StageContext, StageResult
from limo.streaming.executors import ExecutorConfig
from limo.streaming.tables import TableSource, finalize, rows_table, run_sharded


@dataclass
class Config:
    enabled: bool = True
    target_size: int = 817  # LIMO §2: the final LIMO set has 817 problems
    allocation: Literal["proportional", "balanced"] = "proportional"
    pass_rate_bins: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75])  # lower bin edges
    min_labelled: float = 0.5  # cluster when fewer rows than this fraction have a subject
    n_clusters: int = 20
    embedding_model: str | None = None  # a transformers model (alias, hub id or dir); None = TF-IDF
    cluster_sample: int = 50000  # clusters are fitted on at most this many problems (seeded sample); our choice
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


class Clusters:
    """k-means on embeddings or TF-IDF vectors, fitted on (a seeded sample of `cluster_sample` of) the problems,
    then applied batch by batch."""

    def __init__(self, texts: list[str], cfg: Config):
        from sklearn.cluster import KMeans

        self.cfg = cfg
        self.k = min(cfg.n_clusters, len(texts))
        if self.k <= 1:
            return
        self.tfidf = None
        if not cfg.embedding_model:
            from sklearn.feature_extraction.text import TfidfVectorizer

            self.tfidf = TfidfVectorizer(max_features=20000, sublinear_tf=True, stop_words="english").fit(texts)
        self.kmeans = KMeans(n_clusters=self.k, random_state=cfg.seed, n_init=3).fit(self.vectors(texts))

    def vectors(self, texts: list[str]):
        return self.tfidf.transform(texts) if self.tfidf is not None else embed(texts, self.cfg.embedding_model)

    def predict(self, texts: list[str]) -> list[int]:
        return [0] * len(texts) if self.k <= 1 else self.kmeans.predict(self.vectors(texts)).tolist()


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


_COLUMNS = ["problem", "subject", "level", "strong_pass_rate", "weak_pass_rate"]


def _fit_sample(source: TableSource, n: int, cfg: Config) -> list[str]:
    picked = None if n <= cfg.cluster_sample else set(random.Random(cfg.seed).sample(range(n), cfg.cluster_sample))
    texts: list[str] = []
    start = 0
    for table in source.batches(columns=["problem"]):
        batch = table.column("problem").to_pylist()
        texts += batch if picked is None else [t for i, t in enumerate(batch, start) if i in picked]
        start += len(batch)
    return texts


def run(source, cfg: Config, ctx: StageContext) -> StageResult:
    """Pass 1: each row's stratum (codes in a numpy array) and the counts per stratum; quotas and a seeded sample per
    stratum; pass 2: the input filtered shard by shard, every row tagged with its stratum."""
    source = TableSource.of(source)
    n = source.num_rows()
    if not cfg.enabled or not n:
        infos = run_sharded(source, ctx.stage_dir, lambda t, _: (t, rows_table([]), {}), fresh=not ctx.resumable)
        rows_out, reasons = finalize(ctx.stage_dir, infos)
        return StageResult.from_files(ctx.stage_dir, rows_out, reasons, {"enabled": cfg.enabled})
    labelled = 0
    for table in source.batches(columns=["subject"]):
        if "subject" in table.column_names:
            labelled += sum(1 for v in table.column("subject").to_pylist() if v)
    clustered = labelled < cfg.min_labelled * n
    clusters = Clusters(_fit_sample(source, n, cfg), cfg) if clustered else None
    names: dict[str, int] = {}
    codes = np.empty(n, dtype=np.int32)
    start = 0
    with progress_bar(n, "diversity: strata") as advance:
        for table in source.batches(columns=_COLUMNS):
            for i, label in enumerate(_strata(table, clusters, cfg), start):
                codes[i] = names.setdefault(label, len(names))
            start += table.num_rows
            advance(table.num_rows)
    sizes = dict(zip(names, np.bincount(codes, minlength=len(names)).tolist(), strict=True))
    quota = allocate(sizes, cfg.target_size, cfg.allocation)
    rng = random.Random(cfg.seed)
    chosen = np.zeros(n, dtype=bool)
    for s in sorted(names):
        chosen[rng.sample(np.nonzero(codes == names[s])[0].tolist(), quota[s])] = True
    label_of = list(names)

    def split(table: pa.Table, first: int) -> tuple[pa.Table, pa.Table, dict]:
        mine = slice(first, first + table.num_rows)
        table = table.append_column("stratum", pa.array([label_of[c] for c in codes[mine]], pa.string()))
        keep = pa.array(chosen[mine])
        dropped = table.filter(pc.invert(keep))
        dropped = dropped.append_column(DROP_REASON, pa.array(["not_sampled"] * dropped.num_rows, pa.string()))
        return table.filter(keep), dropped, {}

    shards = ctx.executor.cfg if ctx.executor else ExecutorConfig()
    infos = run_sharded(source, ctx.stage_dir, split, shards.shard_rows, shards.batch_rows, fresh=not ctx.resumable)
    rows_out, reasons = finalize(ctx.stage_dir, infos)
    stats = {"clustered": clustered, "strata": len(names), "quota": dict(sorted(quota.items()))}
    return StageResult.from_files(ctx.stage_dir, rows_out, reasons, stats)


def _strata(table: pa.Table, clusters: Clusters | None, cfg: Config) -> list[str]:
    rows = table.to_pylist()
    if clusters is not None:
        groups = [f"cluster-{c}" for c in clusters.predict([r["problem"] for r in rows])]
    else:
        groups = [r.get("subject") or "unknown" for r in rows]
    return [f"{g} | {difficulty_label(r, cfg.pass_rate_bins)}" for r, g in zip(rows, groups, strict=True)]
