"""Ablation variants: how `limo experiment` cuts each training set from a curation, and checks its size.

A variant is one training set of a grid (recipes/ablations/*.yaml). Its rows are drawn in this order:

  1. the pool of rows to draw from
       * `quality_level: k` (LIMO v3 §6.3.1, the quality ablation): problems with at least `min_solutions`
         verified, scored candidates (the `score` stage); each such problem stands for itself in steps 2-3 and
         gets, in step 4, its level-k solution (see `level_candidate`), so all five levels cover the same problems;
       * otherwise the selected set (the `select` stage, best candidate per problem, in selection rank order), or,
         for grids with `draw_from: problems`, the curated problems before any solution exists (the difficulty
         ablation: problems are drawn first, then solved);
  2. filters on problem columns: `levels` (MATH level), `subjects`, `sources` (pool source name), `tiers`
     (difficulty_tier);
  3. `sample_count` rows: `subset: ranked` keeps the first ones in rank order (LIMO v3 §6.3.5 trains on ranked
     subsets), `subset: random` a seeded random sample;
  4. (quality variants) the level-k solution of each kept problem.

`sample_count` is the variant's intended size. `check_sizes` refuses, in one line naming every short variant, its
size and its shortfall, when a variant has fewer rows; `limo experiment` calls it before it trains anything.
"""

import random
import re
from dataclasses import dataclass
from typing import Literal

from limo.errors import LimoError

PROBLEM_FILTERS = (("levels", "level"), ("subjects", "subject"), ("sources", "source"), ("tiers", "difficulty_tier"))


@dataclass
class Variant:
    name: str
    quality_level: int | None = None  # LIMO v3 §6.3.1: L1..L5, the same problems at every level
    # quality variants: problems need at least this many verified solutions (the paper: "several"; not
    # specified; our choice 5, so that each level is a different solution)
    min_solutions: int = 5
    levels: list[int] | None = None
    subjects: list[str] | None = None
    sources: list[str] | None = None
    tiers: list[str] | None = None
    sample_count: int | None = None  # the intended size: fewer rows is an error before any training
    subset: Literal["ranked", "random"] = "ranked"
    seed: int = 0

    def __post_init__(self):
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name):
            raise ValueError(f"variant name must be letters, digits, . _ or -, got {self.name!r}")
        if self.quality_level is not None and not 1 <= self.quality_level <= 5:
            raise ValueError(f"quality_level must be in 1..5, got {self.quality_level}")
        if self.min_solutions < 1:
            raise ValueError(f"min_solutions must be >= 1, got {self.min_solutions}")
        if self.sample_count is not None and self.sample_count < 1:
            raise ValueError("sample_count must be >= 1")


def _score_key(row: dict) -> tuple:
    """Best first: higher quality score, then candidate id (so exact ties never depend on row order)."""
    return (-float(row.get("quality_score") or 0.0), row["candidate_id"])


def level_candidate(candidates: list[dict], level: int) -> dict:
    """The level-`level` solution of one problem: its candidates sorted by quality score (worst first) and split
    into five levels, L1 the worst and L5 the best; level k takes the one at position round((k-1)(n-1)/4). With
    five candidates each level is one of them. The paper splits each problem's solutions into five levels by its
    quality score; the exact split is not specified; this is our choice."""
    ordered = sorted(candidates, key=_score_key, reverse=True)  # worst first
    return ordered[round((level - 1) * (len(ordered) - 1) / 4)]


def filter_rows(variant: Variant, rows: list[dict], counts: dict[str, int]) -> list[dict]:
    """Step 2: keep rows whose problem columns match the variant's filters (each miss counted)."""
    for key, column in PROBLEM_FILTERS:
        allowed = getattr(variant, key)
        if allowed is not None:
            kept = [r for r in rows if r.get(column) in allowed]
            if len(kept) < len(rows):
                counts[f"not_in_{key}"] = len(rows) - len(kept)
            rows = kept
    return rows


def take(variant: Variant, rows: list[dict], counts: dict[str, int]) -> list[dict]:
    """Step 3: `sample_count` rows, the first ones (rows are in rank order) or a seeded random sample."""
    if variant.sample_count is None or variant.sample_count >= len(rows):
        return rows
    counts["not_sampled"] = len(rows) - variant.sample_count
    if variant.subset == "ranked":
        return rows[: variant.sample_count]
    return random.Random(variant.seed).sample(sorted(rows, key=lambda r: r["id"]), variant.sample_count)


def _by_problem(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in rows:
        out.setdefault(row["id"], []).append(row)
    return out


def variant_rows(variant: Variant, scored: list[dict], selected: list[dict]) -> tuple[list[dict], dict[str, int]]:
    """The training rows of one variant (sorted by problem id), and what it could not serve (counted).

    `scored`: every verified, scored candidate (score stage); `selected`: the select stage's rows in rank order
    (or, for `draw_from: problems`, the curated problems)."""
    counts: dict[str, int] = {}
    if variant.quality_level is None:
        rows = take(variant, filter_rows(variant, list(selected), counts), counts)
        return sorted(rows, key=lambda r: r["id"]), counts
    groups = _by_problem(scored)
    eligible = {pid: c for pid, c in groups.items() if len(c) >= variant.min_solutions}
    if len(eligible) < len(groups):
        counts["fewer_solutions_than_min"] = len(groups) - len(eligible)
    # one row per problem, best candidate first, stands for the problem while filtering and sampling
    best = sorted((min(c, key=_score_key) for c in eligible.values()), key=lambda r: (_score_key(r), r["id"]))
    problems = take(variant, filter_rows(variant, best, counts), counts)
    rows = [level_candidate(eligible[p["id"]], variant.quality_level) for p in problems]
    return sorted(rows, key=lambda r: r["id"]), counts


def shortfall(variant: Variant, n_rows: int) -> str | None:
    """'<name>: size N, has M, short by N-M' when the variant cannot reach its intended size, else None."""
    if variant.sample_count is None or n_rows >= variant.sample_count:
        return None
    return f"{variant.name}: size {variant.sample_count}, has {n_rows}, short by {variant.sample_count - n_rows}"


def check_sizes(sizes: list[tuple[Variant, int, dict[str, int]]], when: str) -> None:
    """Refuse (one line naming every short variant, its size, shortfall and why) before anything is trained."""
    short = []
    for variant, n_rows, counts in sizes:
        line = shortfall(variant, n_rows)
        if line:
            why = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
            short.append(line + (f" ({why})" if why else ""))
    if short:
        raise LimoError(f"variants cannot reach their size {when}, nothing was trained: " + "; ".join(short))
