"""Stage 02 `dedup`: drop exact and near-duplicate problems inside the pool, keeping rows by source priority.

Exact: identical after NFKC, lower-casing and removing all whitespace. Near: MinHash over character
`shingle_size`-grams of the problem's words and numbers, LSH with `bands` bands, and a pair is a duplicate when its
estimated Jaccard similarity is >= `threshold` (limo.streaming.minhash: the datatrove-style signatures -> buckets
-> clusters -> filter steps, one scheme). Rows are visited in keep-priority order: sources listed in
`keep_priority` first (in that order; unlisted sources follow in recipe order), then rows with both level and
subject set, then one of them, then file order. So the kept row of a group is the copy from the highest-priority
source, preferring one with metadata (an ablation on difficulty keeps the MATH/AIME copies that carry levels).
Dropped rows carry `drop_reason` "exact_duplicate" / "near_duplicate", `duplicate_of` (the kept id) and
`dup_similarity`.

Streaming (bounded memory): a map step computes, per record batch, the exact-key hash, the metadata count and the
signature (on the local or the Ray executor, limo.streaming.executors); the driver keeps only those compact arrays
(signatures in a memory map on disk), finds the duplicates, and filters the input shard by shard. A rerun after
kill -9 reuses every finished signature shard and output shard.

    dedup: {threshold: 0.8, num_perm: 128, bands: 16, shingle_size: 5, keep_priority: [math_train, aime_1983_2023]}

Defaults are not specified by the paper; our choice, measured with `python bench/dedup.py` (200k problems, 50k
planted near-duplicates): recall 0.976 at precision 0.992 (docs/PERFORMANCE.md).
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from limo.records import DROP_REASON
from limo.runs import StageContext, StageResult
from limo.streaming import minhash
from limo.streaming.executors import LocalExecutor, read_columns
from limo.streaming.tables import TableSource, finalize, run_sharded
from limo.text import exact_key


@dataclass
class Config:
    exact: bool = True
    near: bool = True
    threshold: float = 0.8  # estimated Jaccard similarity of character shingles
    num_perm: int = 128
    # LSH bands of num_perm / bands rows: a pair at similarity 0.8 / 0.85 / 0.9 is a candidate with p 0.95 / 0.994 /
    # 0.9997, one at 0.5 with p 0.06 (32 bands of 4 rows made ~100x more candidate pairs in templated pools)
    bands: int = 16
    shingle_size: int = 5  # characters of the normalised text (words and numbers joined by spaces)
    keep_priority: list[str] | None = None  # source names, highest priority first (default: recipe order)
    hash_seed: int = 1

    def __post_init__(self):
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.num_perm < 16:
            raise ValueError("num_perm must be >= 16")
        if self.bands < 1 or self.num_perm % self.bands:
            raise ValueError(f"bands must divide num_perm ({self.num_perm}), got {self.bands}")
        if self.shingle_size < 1:
            raise ValueError("shingle_size must be >= 1")


EXACT, NEAR = 1, 2
REASONS = {EXACT: "exact_duplicate", NEAR: "near_duplicate"}


def exact_hashes(texts: list[str]) -> np.ndarray:
    """64-bit blake2b of each text's exact key (a collision needs ~2^32 distinct problems to become likely)."""
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(exact_key(t).encode(), digest_size=8).digest(), "little") for t in texts),
        dtype=np.uint64,
        count=len(texts),
    )


def decide(exact: np.ndarray, sig: np.ndarray | None, visit: np.ndarray, cfg: Config):
    """(duplicate_of, reason, similarity) arrays over rows: duplicate_of = -1 for kept rows. Rows are visited in
    `visit` order; an exact duplicate points at the first copy, a near duplicate at its most similar kept row."""
    n = len(exact)
    dup_of = np.full(n, -1, dtype=np.int64)
    reason = np.zeros(n, dtype=np.int8)
    sim = np.zeros(n, dtype=np.float32)
    if cfg.exact and n:
        h = exact[visit]
        by_hash = np.argsort(h, kind="stable")  # equal hashes keep visiting order
        hs = h[by_hash]
        starts = np.concatenate([[True], hs[1:] != hs[:-1]])
        first = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
        later = ~starts
        rows, firsts = visit[by_hash[later]], visit[by_hash[first[later]]]
        dup_of[rows], reason[rows], sim[rows] = firsts, EXACT, 1.0
    if cfg.near and sig is not None and n:
        rest = visit[dup_of[visit] < 0]
        for dropped, (kept, s) in minhash.near_duplicates(sig, rest, cfg.bands, cfg.threshold).items():
            dup_of[dropped], reason[dropped], sim[dropped] = kept, NEAR, s
    return dup_of, reason, sim


def find_duplicates(texts: list[str], order: list[int], cfg: Config) -> dict[int, tuple[int, str, float]]:
    """In memory: {dropped index: (kept index, "exact_duplicate" | "near_duplicate", similarity)}, visiting rows in
    `order` (bench/dedup.py; the stage streams the same steps)."""
    sig = minhash.signatures(texts, cfg.shingle_size, cfg.num_perm, cfg.hash_seed) if cfg.near else None
    dup_of, reason, sim = decide(exact_hashes(texts), sig, np.asarray(order, dtype=np.int64), cfg)
    return {i: (int(dup_of[i]), REASONS[int(reason[i])], round(float(sim[i]), 4)) for i in np.nonzero(dup_of >= 0)[0]}


def metadata_count(row: dict) -> int:
    """How many of level / subject a row has set (0, 1 or 2)."""
    return (row.get("level") is not None) + (row.get("subject") not in (None, ""))


class SignatureBatch:
    """Per-batch step (runs on any executor): id, source, exact-key hash, metadata count, MinHash signature."""

    def __init__(self, cfg: Config):
        self.cfg = cfg

    def __call__(self, table: pa.Table) -> pa.Table:
        texts = table.column("problem").to_pylist()
        level = table.column("level").is_valid() if "level" in table.column_names else None
        subject = table.column("subject").to_pylist() if "subject" in table.column_names else None
        meta = np.zeros(len(texts), dtype=np.int8)
        if level is not None:
            meta += np.asarray(level.to_numpy(zero_copy_only=False), dtype=np.int8)
        if subject is not None:
            meta += np.asarray([v not in (None, "") for v in subject], dtype=np.int8)
        cols = {
            "id": table.column("id"),
            "source": table.column("source"),
            "exact": pa.array(exact_hashes(texts)),
            "meta": pa.array(meta),
        }
        if self.cfg.near:
            sig = minhash.signatures(texts, self.cfg.shingle_size, self.cfg.num_perm, self.cfg.hash_seed)
            cols["sig"] = pa.FixedSizeListArray.from_arrays(pa.array(sig.reshape(-1)), self.cfg.num_perm)
        return pa.table(cols)


def visiting_order(sources: pa.ChunkedArray, meta: np.ndarray, keep_priority: list[str] | None) -> np.ndarray:
    """Rows by source priority (listed sources first, then first appearance), then metadata (more first), then
    row order."""
    encoded = sources.combine_chunks().dictionary_encode() if len(sources) else pa.array([]).dictionary_encode()
    names = encoded.dictionary.to_pylist()  # in order of first appearance
    rank: dict[str, int] = {name: i for i, name in enumerate(keep_priority or [])}
    for name in names:
        rank.setdefault(name, len(rank))
    code_rank = np.asarray([rank[n] for n in names] or [0], dtype=np.int64)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    return np.lexsort((np.arange(len(codes)), -meta.astype(np.int64), code_rank[codes]))


def _signature_matrix(files: list[Path], n: int, num_perm: int, path: Path) -> np.ndarray:
    """The map outputs' signatures in one (n x num_perm) uint32 memory map on disk."""
    sig = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint32, shape=(n, num_perm))
    start = 0
    for f in files:
        for batch in pq.ParquetFile(f).iter_batches(columns=["sig"], batch_size=65536):
            flat = batch.column(0).values.to_numpy(zero_copy_only=False)
            sig[start : start + len(batch)] = flat.reshape(len(batch), num_perm)
            start += len(batch)
    sig.flush()
    return sig


def _ids_of(files: list[Path], wanted: np.ndarray) -> dict[int, str]:
    """{row: id} for the rows in `wanted` (the kept copies that dropped rows point at)."""
    out: dict[int, str] = {}
    start = 0
    for f in files:
        ids = pq.read_table(f, columns=["id"]).column("id")
        local = wanted[(wanted >= start) & (wanted < start + len(ids))]
        for row, ident in zip(local.tolist(), ids.take(pa.array(local - start)).to_pylist(), strict=True):
            out[row] = ident
        start += len(ids)
    return out


def run(source, cfg: Config, ctx: StageContext) -> StageResult:
    """Map: signatures per batch (local or Ray) -> driver: visiting order, exact groups, LSH + verification ->
    filter the input shard by shard into kept / dropped."""
    source = TableSource.of(source)
    executor = ctx.executor or LocalExecutor()
    parts_dir = ctx.stage_dir / "parts"
    files = executor.map(source, SignatureBatch(cfg), parts_dir / "signatures", ctx.resumable)
    state = read_columns(files, ["source", "exact", "meta"])
    n = state.num_rows
    visit = visiting_order(state.column("source"), state.column("meta").to_numpy(), cfg.keep_priority)
    sig = _signature_matrix(files, n, cfg.num_perm, parts_dir / "signatures.npy") if cfg.near and n else None
    dup_of, reason, sim = decide(state.column("exact").to_numpy(), sig, visit, cfg)
    del state, sig
    (parts_dir / "signatures.npy").unlink(missing_ok=True)
    ids = _ids_of(files, np.unique(dup_of[dup_of >= 0]))

    def split(table: pa.Table, first: int) -> tuple[pa.Table, pa.Table, dict]:
        rows = slice(first, first + table.num_rows)
        dropped_mask = dup_of[rows] >= 0
        dropped = table.filter(pa.array(dropped_mask))
        picked = np.nonzero(dropped_mask)[0] + first
        dropped = dropped.append_column("duplicate_of", pa.array([ids[int(dup_of[i])] for i in picked], pa.string()))
        dropped = dropped.append_column("dup_similarity", pa.array(np.round(sim[picked].astype(np.float64), 4)))
        dropped = dropped.append_column(DROP_REASON, pa.array([REASONS[int(reason[i])] for i in picked], pa.string()))
        return table.filter(pa.array(~dropped_mask)), dropped, {}

    infos = run_sharded(
        source, ctx.stage_dir, split, executor.cfg.shard_rows, executor.cfg.batch_rows, fresh=not ctx.resumable
    )
    rows_out, reasons = finalize(ctx.stage_dir, infos)
    stats = {"threshold": cfg.threshold, "num_perm": cfg.num_perm, "bands": cfg.bands, "executor": executor.describe()}
    return StageResult.from_files(ctx.stage_dir, rows_out, reasons, stats)
