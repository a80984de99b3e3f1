"""Near-duplicate detection at pool scale: MinHash signatures -> LSH buckets -> verified pairs -> kept/dropped.

The four steps of datatrove's MinHash pipeline (datatrove 0.10.1, src/datatrove/pipeline/dedup/minhash.py:
MinhashDedupSignature, MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter), done with numpy over
compact arrays that live on disk between steps:

1. signatures: word `shingle_size`-grams of each problem (limo.text.tokens), every token hashed with
   blake2b (stable across batches, processes and machines), shingles combined by a polynomial; `num_perm` 32-bit
   minima of multiply-shift hashes. One batch at a time -> `sig-NNNNN.npy` (rows x num_perm, uint32).
2. buckets: the signature is cut into `bands` bands of `num_perm / bands` rows; a band's values hash to one 64-bit
   key; rows with equal keys in a band are candidate pairs (sorting `bands` arrays of n keys).
3. verify + cluster: a candidate pair is a duplicate when the estimated Jaccard similarity (share of equal
   signature values) is >= `threshold`. Unlike datatrove (which keeps an arbitrary root of each connected
   component and does not verify), rows are visited in keep-priority order and a row is dropped only when it is
   a verified duplicate of a row that is kept, so the kept copy is the highest-priority one (limo's
   `dedup.keep_priority`) and a chain a~b~c with a !~ c keeps c.
4. filter: the (dropped row, kept row, similarity) triples, applied batch by batch by the caller.

Memory: signatures (4 bytes x num_perm per row) are memory-mapped from disk; the band keys (4 bytes x bands per
row) and the distinct candidate pairs (8 bytes each) are the arrays held.

Why not datatrove itself: it keeps an arbitrary member of each cluster (no way to prefer a source, which
`keep_priority` needs), treats any band collision as a duplicate without a similarity check, and its readers,
writers and executors replace ours; the numbers it would need are reproduced here instead (bench/dedup.py).
"""

import numpy as np

from limo.text import exact_key, tokens

_COMBINE = np.uint64(1_000_003)
_MIX = np.uint64(0x9E3779B97F4A7C15)
_MAX_GROUP_PAIRS = 64  # pairs per member of one bucket group: each row is compared with this many earlier rows


def normalized(text: str) -> str:
    """The text a signature is computed on: its words and numbers (limo.text.tokens) joined by single
    spaces, so whitespace, LaTeX punctuation and case do not hide a copy; an empty result falls back to the exact
    key."""
    return " ".join(tokens(text)) or exact_key(text) or "<empty>"


def shingles(texts: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    """(64-bit hashes of the character k-grams of each normalised text, offsets: first shingle of each document +
    total). A text shorter than k characters has one shingle: all of it. Pure functions of the bytes, so a row's
    signature does not depend on its batch, process or machine."""
    encoded = [normalized(t).encode() for t in texts]
    lens = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
    buf = np.frombuffer(b"".join(encoded), dtype=np.uint8).astype(np.uint64)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    k_doc = np.minimum(lens, k)
    n_sh = lens - k_doc + 1
    doc_of = np.repeat(np.arange(len(texts)), n_sh)
    pos = np.arange(int(n_sh.sum())) - np.repeat(np.cumsum(n_sh) - n_sh, n_sh) + starts[doc_of]
    kk = k_doc[doc_of]
    acc = np.zeros(len(pos), dtype=np.uint64)
    last = max(len(buf) - 1, 0)
    for j in range(k):
        acc = np.where(j < kk, acc * _COMBINE + buf[np.minimum(pos + j, last)] + np.uint64(1), acc)
    acc *= _MIX
    acc ^= acc >> np.uint64(29)
    return acc, np.concatenate([[0], np.cumsum(n_sh)]).astype(np.int64)


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    a = rng.randint(1, 2**62, size=num_perm, dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.randint(0, 2**62, size=num_perm, dtype=np.int64).astype(np.uint64)
    return a, b


def signatures(texts: list[str], shingle_size: int, num_perm: int, seed: int, chunk: int = 8192) -> np.ndarray:
    """MinHash signatures (len(texts) x num_perm, uint32): ((a*x + b) mod 2^64) >> 32 with odd a, minimum per
    document and permutation, computed over cache-sized chunks of shingles."""
    a, b = permutations(num_perm, seed)
    a, b = a[:, None], b[:, None]
    sh, offsets = shingles(texts, shingle_size)
    sig = np.empty((len(texts), num_perm), dtype=np.uint32)
    shift = np.uint64(32)
    start = 0
    while start < len(texts):
        end = int(np.searchsorted(offsets, offsets[start] + chunk, side="right")) - 1
        end = min(max(end, start + 1), len(texts))
        lo, hi = int(offsets[start]), int(offsets[end])
        phv = sh[None, lo:hi] * a
        phv += b
        phv >>= shift
        sig[start:end] = np.minimum.reduceat(phv, offsets[start:end] - lo, axis=1).T
        start = end
    return sig


def band_keys(sig: np.ndarray, bands: int) -> np.ndarray:
    """(rows x bands) uint32: one hash per band of the signature (equal bands -> equal keys; a rare collision only
    adds a candidate pair, which the similarity check then rejects)."""
    rows = sig.shape[1] // bands
    keys = np.zeros((sig.shape[0], bands), dtype=np.uint64)
    for r in range(rows):
        keys = keys * _COMBINE + sig[:, r::rows][:, :bands].astype(np.uint64)
    keys *= _MIX
    return (keys >> np.uint64(32)).astype(np.uint32)


def candidate_pairs(keys: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """(p x 2) int64 pairs (earlier row, later row) in visiting order `rank` (rank[i] = position of row i),
    for rows sharing a band key; each row is paired with at most _MAX_GROUP_PAIRS earlier rows of its group.
    Pairs are kept as one int64 each (earlier * n + later) and de-duplicated after every band, so memory follows
    the distinct pairs, not pairs x bands."""
    n = len(rank)
    found = np.empty(0, dtype=np.int64)
    for band in range(keys.shape[1]):
        order = np.lexsort((rank, keys[:, band]))
        k = keys[order, band]
        same = np.concatenate([[False], k[1:] == k[:-1]])
        del k
        # position of each row inside its group of equal keys
        group_start = np.maximum.accumulate(np.where(~same, np.arange(n), 0))
        pos_in_group = np.arange(n) - group_start
        band_pairs = [found]
        for back in range(1, _MAX_GROUP_PAIRS + 1):
            later = np.nonzero(pos_in_group >= back)[0]
            if not len(later):
                break
            band_pairs.append(order[later - back].astype(np.int64) * n + order[later])
        found = np.unique(np.concatenate(band_pairs))
    return np.stack([found // max(n, 1), found % max(n, 1)], axis=1)


def greedy_keep(
    pairs: np.ndarray, sims: np.ndarray, rank: np.ndarray, threshold: float
) -> dict[int, tuple[int, float]]:
    """{dropped row: (kept row, similarity)}: rows in visiting order; a row is dropped when a verified pair joins it
    to an earlier row that is kept (the most similar one)."""
    good = sims >= threshold
    pairs, sims = pairs[good], sims[good]
    if not len(pairs):
        return {}
    # orient pairs as (earlier, later) by rank, then visit by the later row's rank
    flip = rank[pairs[:, 0]] > rank[pairs[:, 1]]
    early = np.where(flip, pairs[:, 1], pairs[:, 0])
    late = np.where(flip, pairs[:, 0], pairs[:, 1])
    order = np.lexsort((rank[early], -sims, rank[late]))
    dropped: dict[int, tuple[int, float]] = {}
    for e, la, s in zip(early[order].tolist(), late[order].tolist(), sims[order].tolist(), strict=True):
        if la in dropped or e in dropped:
            continue
        dropped[la] = (e, round(s, 4))
    return dropped


def near_duplicates(sig: np.ndarray, rows: np.ndarray, bands: int, threshold: float) -> dict[int, tuple[int, float]]:
    """Steps 2-4: {dropped row: (kept row, similarity)} among `rows` (indices into `sig`, in visiting order).
    `sig` may be a memory map: it is read in chunks."""
    chunk = 131072
    keys = np.empty((len(rows), bands), dtype=np.uint32)
    for s in range(0, len(rows), chunk):
        keys[s : s + chunk] = band_keys(np.asarray(sig[rows[s : s + chunk]]), bands)
    position = np.arange(len(rows))
    pairs = candidate_pairs(keys, position)
    del keys
    sims = np.empty(len(pairs), dtype=np.float32)
    for s in range(0, len(pairs), chunk):
        p = rows[pairs[s : s + chunk]]
        sims[s : s + chunk] = (np.asarray(sig[p[:, 0]]) == np.asarray(sig[p[:, 1]])).mean(axis=1)
    kept = greedy_keep(pairs, sims, position, threshold)
    return {int(rows[d]): (int(rows[k]), s) for d, (k, s) in kept.items()}
