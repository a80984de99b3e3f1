"""Near-duplicate detection at scale: 200,000 problems with planted, labelled near-duplicates.

    .venv/bin/python bench/dedup.py [--total 200000] [--planted 50000]

Rows: the real pools (math_train + aime_1983_2023 from data_dir()/pools), synthetic distinct problems (2-4
sentences drawn from the real problems' sentence bank, numbers re-drawn), and planted copies of random base rows
with known labels, perturbed by: whitespace, punctuation, a number swap, a dropped word, or two of these. All rows
are shuffled. limo.stages.dedup.find_duplicates (exact + MinHash LSH, default Config) runs over all of them.
A planted copy counts as found when it is dropped as a duplicate of its own family (its base or another copy of
it). Base rows whose words and numbers are identical (the AIME problems inside MATH that differ only in `$`
formatting) form one family. Precision is over drops that involve a planted or synthetic row; drops among real
rows (real templated siblings, the 196 AIME problems inside MATH) are reported separately. Baselines in the same
run: exact-only dedup (recall) and the previous scheme (word 3-gram MinHash + datasketch's MinHashLSH, the
dedup.py of commit OLD_COMMIT, read with `git show`; needs datasketch, in the dev extra).
Writes bench/results/dedup.json.
"""

import argparse
import json
import random
import re
import subprocess
import sys
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from limo.paths import data_dir  # noqa: E402
from limo.stages.dedup import Config, find_duplicates  # noqa: E402
from limo.text import tokens  # noqa: E402

NUM = re.compile(r"\d+")
OLD_COMMIT = "fba6251"  # the last commit with the word 3-gram + datasketch scheme


def perturb(text: str, kind: str, rng: random.Random) -> str:
    if kind == "whitespace":
        return re.sub(r" ", lambda m: rng.choice([" ", "  ", "\n", " \t"]), text)
    if kind == "punctuation":
        out = re.sub(r"[,.;]", lambda m: rng.choice(["", m.group(), m.group() * 2]), text)
        return out + rng.choice(["", ".", " ?"])
    if kind == "number_swap":
        nums = list(NUM.finditer(text))
        if not nums:
            return text + " (1)"
        m = rng.choice(nums)
        return text[: m.start()] + str(int(m.group()) + rng.randint(1, 9)) + text[m.end() :]
    if kind == "word_drop":
        words = text.split(" ")
        if len(words) > 3:
            del words[rng.randrange(len(words))]
        return " ".join(words)
    raise ValueError(kind)


KINDS = ["whitespace", "punctuation", "number_swap", "word_drop"]


def build(total: int, planted: int, seed: int):
    rng = random.Random(seed)
    real = [
        json.loads(line)["problem"]
        for name in ("math_train", "aime_1983_2023")
        for line in open(data_dir() / "pools" / f"{name}.jsonl")
    ]
    bank = [s.strip() for t in real for s in re.split(r"(?<=[.?!])\s+", t) if len(s.split()) >= 4]
    n_synth = total - planted - len(real)
    synth = []
    for _ in range(n_synth):
        parts = [rng.choice(bank) for _ in range(rng.randint(2, 4))]
        synth.append(NUM.sub(lambda m: str(rng.randint(2, 999)), " ".join(parts)))
    bases = real + synth
    canonical: dict[str, int] = {}
    family = [canonical.setdefault(" ".join(tokens(t)), b) for b, t in enumerate(bases)]
    kinds = ["real"] * len(real) + ["synthetic"] * len(synth)
    texts = list(bases)
    for _ in range(planted):
        b = rng.randrange(len(bases))
        chosen = rng.sample(KINDS, rng.choice([1, 1, 1, 2]))
        text = bases[b]
        for k in chosen:
            text = perturb(text, k, rng)
        texts.append(text)
        family.append(family[b])
        kinds.append("planted:" + "+".join(chosen))
    order = list(range(len(texts)))
    rng.shuffle(order)
    return [texts[i] for i in order], [family[i] for i in order], [kinds[i] for i in order]


def score(found, family, kinds):
    planted = [i for i, k in enumerate(kinds) if k.startswith("planted")]
    # a family's first row (in visiting order) is kept; every later member should be dropped into the family
    first_of: dict[int, int] = {}
    for i in range(len(family)):
        first_of.setdefault(family[i], i)
    should = [i for i in planted if first_of[family[i]] != i] + [
        i for i, k in enumerate(kinds) if not k.startswith("planted") and first_of[family[i]] != i
    ]
    hit = sum(1 for i in should if i in found and family[found[i][0]] == family[i])
    labelled_drops = [i for i in found if kinds[i] != "real" or kinds[found[i][0]] != "real"]
    correct = sum(1 for i in labelled_drops if family[found[i][0]] == family[i])
    real_real = sum(1 for i in found if kinds[i] == "real" and kinds[found[i][0]] == "real")
    by_kind: dict[str, list[int]] = {}
    for i in should:
        k = kinds[i].split(":")[-1]
        by_kind.setdefault(k, [0, 0])
        by_kind[k][0] += 1
        by_kind[k][1] += int(i in found and family[found[i][0]] == family[i])
    return {
        "planted_duplicates": len(should),
        "recall": round(hit / max(1, len(should)), 4),
        "precision": round(correct / max(1, len(labelled_drops)), 4),
        "labelled_drops": len(labelled_drops),
        "real_vs_real_drops": real_real,
        "recall_by_perturbation": {k: round(v[1] / v[0], 4) for k, v in sorted(by_kind.items())},
    }


def old_scheme():
    """The dedup module of OLD_COMMIT (word 3-gram MinHash + datasketch MinHashLSH), or None when unavailable."""
    root = Path(__file__).resolve().parents[1]
    try:
        source = subprocess.run(
            ["git", "show", f"{OLD_COMMIT}:src/limo/stages/dedup.py"], cwd=root, capture_output=True, check=True
        ).stdout.decode()
        import datasketch  # noqa: F401
    except (subprocess.CalledProcessError, FileNotFoundError, ImportError) as e:
        print(f"old scheme not run: {e}")
        return None
    # the text keys have since moved to limo.text (same functions); the rest of the import is unchanged
    source = source.replace(
        "from limo.stages.common import exact_key, to_rows, tokens, with_reason",
        "from limo.stages.common import to_rows, with_reason\nfrom limo.text import exact_key, tokens",
    )
    module = types.ModuleType("old_dedup")
    exec(compile(source, f"{OLD_COMMIT}:src/limo/stages/dedup.py", "exec"), module.__dict__)  # our own old code
    return module


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--total", type=int, default=200_000)
    ap.add_argument("--planted", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    texts, family, kinds = build(args.total, args.planted, args.seed)
    build_s = time.perf_counter() - t0
    cfg = Config()
    order = list(range(len(texts)))

    t0 = time.perf_counter()
    exact_only = find_duplicates(texts, order, Config(near=False))
    exact_s = time.perf_counter() - t0
    old = old_scheme()
    rows = [
        {"method": "exact only (normalised text)", "seconds": round(exact_s, 1), **score(exact_only, family, kinds)}
    ]
    if old is not None:
        t0 = time.perf_counter()
        found_old = old.find_duplicates(texts, order, old.Config())
        rows.append(
            {
                "method": f"old ({OLD_COMMIT}): exact + word 3-gram MinHash, datasketch LSH (0.8, 128 perm)",
                "seconds": round(time.perf_counter() - t0, 1),
                **score(found_old, family, kinds),
            }
        )
        del found_old
    t0 = time.perf_counter()
    found = find_duplicates(texts, order, cfg)
    rows.append(
        {
            "method": f"new: exact + MinHash LSH (threshold {cfg.threshold}, {cfg.num_perm} perm, {cfg.bands} bands, "
            f"{cfg.shingle_size}-char shingles)",
            "seconds": round(time.perf_counter() - t0, 1),
            **score(found, family, kinds),
        }
    )
    print(
        f"{len(texts)} problems ({sum(k == 'real' for k in kinds)} real, "
        f"{sum(k == 'synthetic' for k in kinds)} synthetic, {args.planted} planted copies); built in {build_s:.1f}s"
    )
    print(f"{'method':90s} {'sec':>6s} {'recall':>7s} {'prec':>7s} {'real-real':>9s}")
    for r in rows:
        print(
            f"{r['method']:90s} {r['seconds']:6.1f} {r['recall']:7.4f} {r['precision']:7.4f} "
            f"{r['real_vs_real_drops']:9d}"
        )
    print("recall by perturbation (new):", rows[-1]["recall_by_perturbation"])
    new = rows[-1]
    old_s = rows[1]["seconds"] if old is not None else None
    result = {
        "machine": "2-core CPU dev box, no GPU (shared with other jobs)",
        "problems": len(texts),
        "planted": args.planted,
        "seed": args.seed,
        "methods": rows,
        "acceptance": {
            "recall_at_least_0.95": new["recall"] >= 0.95,
            "precision_at_least_0.99": new["precision"] >= 0.99,
            "time_within_2x_of_old": None if old_s is None else new["seconds"] <= 2 * old_s,
        },
    }
    out = Path(__file__).parent / "results" / "dedup.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
