"""Stage 02 `dedup`: drop exact and near-duplicate problems inside the pool, keeping rows by source priority.

Exact: identical after NFKC, lower-casing and removing all whitespace. Near: MinHash signatures of word
`shingle_size`-grams, candidates from datasketch's MinHashLSH, confirmed when the estimated Jaccard similarity
is >= `threshold`. Rows are visited in priority order (sources in `priority`, else recipe order; then file
order), so the kept row of a group is the one from the highest-priority source. Dropped rows carry
`drop_reason` "exact_duplicate" / "near_duplicate", `duplicate_of` (the kept id) and `dup_similarity`.

    dedup: {threshold: 0.8, num_perm: 128, shingle_size: 3, priority: [math_train, aime_1983_2023]}

Benchmark: `python bench/dedup.py` (200k problems).
"""

from dataclasses import dataclass

import numpy as np
from datasets import Dataset

from limo.console import progress_bar
from limo.runs import StageContext, StageResult
from limo.stages.common import exact_key, to_rows, tokens, with_reason


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


_MIX = np.uint64(0x9E3779B97F4A7C15)
_COMBINE = np.uint64(1_000_003)


def _token_hashes(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(flat 64-bit hashes of every document's tokens, tokens per document). Tokens are numbered in order of first
    appearance (deterministic for a given input) and mixed into 64-bit values."""
    vocab: dict[str, int] = {}
    ids: list[int] = []
    lens = np.empty(len(texts), dtype=np.int64)
    for d, text in enumerate(texts):
        toks = tokens(text) or [exact_key(text) or "<empty>"]
        lens[d] = len(toks)
        ids.extend(vocab.setdefault(t, len(vocab) + 1) for t in toks)
    h = np.asarray(ids, dtype=np.uint64) * _MIX
    return h ^ (h >> np.uint64(29)), lens


def shingles(texts: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    """(hashes of word k-grams, first shingle index per document + total). A document with fewer than k words
    has one shingle: all its words."""
    h, lens = _token_hashes(texts)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    k_doc = np.minimum(lens, k)  # short documents use all their words
    n_sh = lens - k_doc + 1
    doc_of = np.repeat(np.arange(len(texts)), n_sh)
    pos = np.arange(int(n_sh.sum())) - np.repeat(np.cumsum(n_sh) - n_sh, n_sh) + starts[doc_of]
    kk = k_doc[doc_of]
    acc = np.zeros(len(pos), dtype=np.uint64)
    for j in range(k):
        take = j < kk
        acc = np.where(take, acc * _COMBINE + h[np.minimum(pos + j, len(h) - 1)], acc)
    offsets = np.concatenate([[0], np.cumsum(n_sh)])
    return acc, offsets


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    a = rng.randint(1, 2**62, size=num_perm, dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.randint(0, 2**62, size=num_perm, dtype=np.int64).astype(np.uint64)
    return a, b


def signatures(texts: list[str], cfg: Config, progress=None, chunk_shingles: int = 8192) -> np.ndarray:
    """MinHash signatures (len(texts) x num_perm), computed with numpy over cache-sized chunks of documents:
    multiply-shift hashing ((a*x + b) mod 2^64) >> 32 with odd a, one min per document and permutation."""
    a, b = permutations(cfg.num_perm, cfg.hash_seed)
    a, b = a[:, None], b[:, None]
    sh, offsets = shingles(texts, cfg.shingle_size)
    sig = np.empty((len(texts), cfg.num_perm), dtype=np.uint64)
    shift = np.uint64(32)
    start = 0
    while start < len(texts):
        end = int(np.searchsorted(offsets, offsets[start] + chunk_shingles, side="right")) - 1
        end = min(max(end, start + 1), len(texts))
        lo, hi = int(offsets[start]), int(offsets[end])
        phv = sh[None, lo:hi] * a  # (num_perm, shingles): rows contiguous, so the per-document min is fast
        phv += b
        phv >>= shift
        sig[start:end] = np.minimum.reduceat(phv, offsets[start:end] - lo, axis=1).T
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
