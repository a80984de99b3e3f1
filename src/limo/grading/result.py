"""What grading returns: a verdict, the extracted answer, and which rule produced them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Verdict = Literal["correct", "incorrect", "no_answer", "timeout"]
VERDICTS: tuple[str, ...] = ("correct", "incorrect", "no_answer", "timeout")

Rule = Literal["boxed", "extended"]
# `boxed`: the authors' rule (GAIR-NLP/LIMO eval/utils/parser.py@2284c6a `extract_answer`: the text after the last
# "boxed", brace-matched; no box means no answer, which their accuracy counts as wrong).
# `extended`: boxes first, then stated final answers in prose (limo's own extractor, docs/GRADING.md).
RULES: tuple[str, ...] = ("boxed", "extended")


@dataclass(frozen=True)
class GradeResult:
    verdict: Verdict
    extracted: str | None
    rule: Rule = "extended"
    boxed_verdict: Verdict | None = None  # with rule `extended`: the verdict the `boxed` rule gives the same response

    @property
    def correct(self) -> bool:
        return self.verdict == "correct"

    def to_dict(self) -> dict:
        out = {"correct": self.correct, "verdict": self.verdict, "extracted": self.extracted, "rule": self.rule}
        if self.boxed_verdict is not None:
            out["boxed_verdict"] = self.boxed_verdict
        return out


def summarize(results: list[GradeResult]) -> dict[str, int]:
    """Verdict counts plus `total`."""
    counts = {v: 0 for v in VERDICTS}
    for r in results:
        counts[r.verdict] += 1
    counts["total"] = len(results)
    return counts
