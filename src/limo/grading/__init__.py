"""Answer grading shared by difficulty sampling, solution verification and evaluation.

    from limo.grading import grade, grade_many, extract_answer
    grade("... so the answer is \\boxed{025}", "25").verdict          # 'correct'
    grade_many([(response, gold), ...], timeout_s=5.0, workers=2)    # order preserved
    grade_many(items, rule="boxed")                                  # the authors' rule: last box, no box = wrong

Command line: `limo grade IN.jsonl -o OUT.jsonl [--rule boxed|extended]` (rows with `response` and `answer`).

One job per module:
  result.py      GradeResult, verdicts, the two rules
  extraction.py  finding the final answer (`boxed_answer` for rule boxed, `extract_answer` for rule extended)
  normalise.py   canonical string form of an answer
  exact.py       exact rational evaluator (never eval)
  compare.py     extracted vs gold: exact checks, then math-verify; `grade_item` for one item
  choice.py      multiple choice (GPQA): letter or full option text
  pool.py        worker processes with hard per-item timeouts (pebble)
  files.py       `limo grade` on a JSONL/Parquet file
See docs/GRADING.md.
"""

from limo.grading.compare import cheap_verdict, grade_item
from limo.grading.exact import exact_value
from limo.grading.extraction import boxed_answer, extract_answer, last_boxed
from limo.grading.files import grade_jsonl
from limo.grading.normalise import normalize
from limo.grading.pool import default_workers, grade, grade_many
from limo.grading.result import RULES, VERDICTS, GradeResult, Rule, Verdict, summarize

__all__ = [
    "RULES",
    "VERDICTS",
    "GradeResult",
    "Rule",
    "Verdict",
    "boxed_answer",
    "cheap_verdict",
    "default_workers",
    "exact_value",
    "extract_answer",
    "grade",
    "grade_item",
    "grade_jsonl",
    "grade_many",
    "last_boxed",
    "normalize",
    "summarize",
]
