"""Synthetic problem pools of any size, built from the shared MATH train problems (bench/scale.py and tests).

Row i is, with probability `dup_rate`, a perturbed copy of an earlier row (whitespace, punctuation, a changed
number or a dropped word: near-duplicates for dedup), else a new problem: the sentences of two MATH problems joined,
every number re-drawn. Subject, level, solution and answer come from the first of the two problems. Rows are
written as JSONL, streamed, so the builder itself needs little memory; the same (n, seed) gives the same file.
"""

import json
import random
import re
from pathlib import Path

from limo.paths import data_dir

_NUM = re.compile(r"\d+")
_SENTENCE = re.compile(r"(?<=[.?!])\s+")


def _perturb(text: str, rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return re.sub(r" ", lambda m: rng.choice([" ", "  ", "\n"]), text)
    if kind == 1:
        return re.sub(r"[,.;]", lambda m: rng.choice(["", m.group(), m.group() * 2]), text)
    if kind == 2:
        nums = list(_NUM.finditer(text))
        if not nums:
            return text + " (1)"
        m = rng.choice(nums)
        return text[: m.start()] + str(int(m.group()) + rng.randint(1, 9)) + text[m.end() :]
    words = text.split(" ")
    if len(words) > 3:
        del words[rng.randrange(len(words))]
    return " ".join(words)


def write_pool(path: Path, n: int, seed: int = 0, dup_rate: float = 0.1, bad_line: int | None = None) -> Path:
    """Write an n-row JSONL pool; `bad_line` (1-based) is written as malformed JSON (for invalid_rows tests)."""
    rng = random.Random(seed)
    base = [json.loads(line) for line in open(data_dir() / "pools" / "math_train.jsonl")]
    recent: list[str] = []  # a window of earlier problems to copy from (bounded memory)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for i in range(n):
            a = base[rng.randrange(len(base))]
            if recent and rng.random() < dup_rate:
                problem = _perturb(rng.choice(recent), rng)
            else:
                b = base[rng.randrange(len(base))]
                sentences = _SENTENCE.split(a["problem"])[:2] + _SENTENCE.split(b["problem"])[-1:]
                problem = _NUM.sub(lambda m: str(rng.randint(2, 999)), " ".join(sentences))
                recent.append(problem)
                if len(recent) > 5000:
                    recent.pop(rng.randrange(len(recent)))
            row = {
                "id": f"syn-{i}",
                "problem": problem,
                "solution": a.get("solution"),
                "answer": a.get("answer"),
                "subject": a.get("subject"),
                "level": a.get("level"),
            }
            f.write("{not json\n" if bad_line == i + 1 else json.dumps(row) + "\n")
    return path
