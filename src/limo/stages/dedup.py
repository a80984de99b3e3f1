"""Stage 02 `dedup`: drop exact and near-duplicate problems inside the pool, keeping rows by source priority.

Exact: identical after NFKC, lower-casing and removing all whitespace. Near: MinHash signatures of word
`shingle_size`-grams, candidates from datasketch's MinHashLSH, confirmed when the estimated Jaccard similarity
is >= `threshold`. Rows are visited in priority order (sources in `priority`, else recipe order; then file
order), so the kept row of a group is the one from the highest-priority source. Dropped rows carry
`drop_reason` "exact_duplicate" / "near_duplicate", `duplicate_of` (the kept id) and `dup_similarity`.

    dedup: {threshold: 0.8, num_perm: 128, shingle_size: 3, priority: [math_train, aime_1983_2023]}

Benchmark: `python bench/dedup.py` (200k problems).
"""

import zlib
from dataclasses import dataclass

import numpy as np
from datasets import Dataset

from limo.console import progress_bar
from limo.runs import StageContext, StageResult
from limo.stages.common import exact_key, to_rows, tokens, with_reason

_PRIME = np.uint64((1 << 61) - 1)
_MAX_HASH = np.uint64((1 << 32) - 1)


@dataclass
class Config:
    exact: bool = True
    near: bool = True
    threshold: float = 0.8  # estimated Jaccard of word 3-gram shingles
    num_perm: int = 128
    shingle_size: int = 3
    priority: list[str] | None = None  # source names, highest priority first (default: recipe order)
    hash_seed: int = 1

    def __post_init__(self):
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.num_perm < 16:
            raise ValueError("num_perm must be >= 16")
        if self.shingle_size < 1:
            raise ValueError("shingle_size must be >= 1")


def shingle_hashes(text: str, k: int) -> np.ndarray:
    """32-bit hashes of the word k-grams of `text` (one hash of the whole text when it has fewer than k words)."""
    toks = tokens(text)
    if not toks:
        return np.array([zlib.crc32(exact_key(text).encode())], dtype=np.uint64)
    h = np.fromiter((zlib.crc32(t.encode()) for t in toks), dtype=np.uint64, count=len(toks))
    if len(toks) < k:
        k = len(toks)
    # polynomial combination of k consecutive token hashes, mod 2^32
    acc = np.zeros(len(toks) - k + 1, dtype=np.uint64)
    for j in range(k):
        acc = (acc * np.uint64(1_000_003) + h[j : len(h) - k + 1 + j]) & _MAX_HASH
    return np.unique(acc)


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    a = rng.randint(1, (1 << 31) - 1, size=num_perm, dtype=np.int64).astype(np.uint64)
    b = rng.randint(0, (1 << 31) - 1, size=num_perm, dtype=np.int64).astype(np.uint64)
    return a, b


def signatures(texts: list[str], cfg: Config, progress=None, chunk_shingles: int = 100_000) -> np.ndarray:
    """MinHash signatures (len(texts) x num_perm, uint64), computed chunk-wise with numpy."""
    a, b = permutations(cfg.num_perm, cfg.hash_seed)
    sig = np.empty((len(texts), cfg.num_perm), dtype=np.uint64)
    start = 0
    while start < len(texts):
        parts, total, end = [], 0, start
        while end < len(texts) and (total < chunk_shingles or end == start):
            parts.append(shingle_hashes(texts[end], cfg.shingle_size))
            total += len(parts[-1])
            end += 1
        hv = np.concatenate(parts)
        offsets = np.cumsum([0] + [len(p) for p in parts[:-1]])
        phv = ((hv[:, None] * a[None, :] + b[None, :]) % _PRIME) & _MAX_HASH
        sig[start:end] = np.minimum.reduceat(phv, offsets, axis=0)
        if progress:
            progress(end - start)
        start = end
    return sig


def find_duplicates(
    texts: list[str], order: list[int], cfg: Config, progress=None
) -> dict[int, tuple[int, str, float]]:
    """{dropped index: (kept index, "exact_duplicate" | "near_duplicate", similarity)}, visiting rows in `order`."""
    from datasketch import LeanMinHash, MinHashLSH

    found: dict[int, tuple[int, str, float]] = {}
    if cfg.exact:
        first: dict[str, int] = {}
        for i in order:
            key = exact_key(texts[i])
            if key in first:
                found[i] = (first[key], "exact_duplicate", 1.0)
            else:
                first[key] = i
    if not cfg.near:
        return found
    rest = [i for i in order if i not in found]
    sig = signatures([texts[i] for i in rest], cfg, progress=progress)
    lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm)
    for pos, i in enumerate(rest):
        mh = LeanMinHash(seed=cfg.hash_seed, hashvalues=sig[pos], scheme="legacy")
        best, best_sim = -1, 0.0
        for cand in lsh.query(mh):
            sim = float(np.mean(sig[cand] == sig[pos]))
            if sim > best_sim:
                best, best_sim = cand, sim
        if best >= 0 and best_sim >= cfg.threshold:
            found[i] = (rest[best], "near_duplicate", round(best_sim, 4))
        else:
            lsh.insert(pos, mh, check_duplication=False)
    return found


def priority_order(sources: list[str], priority: list[str] | None) -> list[int]:
    """Row indices sorted by source priority (listed sources first, then first appearance), then row order."""
    rank: dict[str, int] = {name: i for i, name in enumerate(priority or [])}
    for name in sources:
        rank.setdefault(name, len(rank))
    return sorted(range(len(sources)), key=lambda i: (rank[sources[i]], i))


def run(ds: Dataset, cfg: Config, ctx: StageContext) -> StageResult:
    rows = to_rows(ds)
    texts = [r["problem"] for r in rows]
    order = priority_order([r["source"] for r in rows], cfg.priority)
    with progress_bar(len(rows), "dedup: MinHash signatures") as advance:
        found = find_duplicates(texts, order, cfg, progress=advance)
    kept, dropped = [], []
    for i, r in enumerate(rows):
        if i in found:
            j, reason, sim = found[i]
            dropped += with_reason([r], reason, duplicate_of=rows[j]["id"], dup_similarity=sim)
        else:
            kept.append(r)
    return StageResult.from_rows(kept, dropped, {"threshold": cfg.threshold, "num_perm": cfg.num_perm})
