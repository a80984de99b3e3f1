"""Evaluation protocols: a named mapping from benchmark to (n, temperature, top_p, max_tokens, metric, grading rule).

    from limo.eval.protocols import get_protocol
    get_protocol("limo-v3").for_benchmark("aime24")    # BenchmarkProtocol(n=4, temperature=0.6, ...)

Shipped protocols (each setting cites its source; see docs/GRADING.md "Protocols"):

- `greedy`: limo's default. One greedy sample per problem, pass@1, grading rule `extended`, up to 32768 tokens.
- `limo-v1`: LIMO paper v1 (arXiv 2502.03387v1, Feb 2025) §4.2, as the authors quote it in GAIR-NLP/LIMO issue #17
  (2025-02-22): greedy decoding with a single sample on MATH500, OlympiadBench, Gaokao, Kaoyan, GradeSchool,
  MinervaMath and GPQA; on AIME24, AMC23 and CHMath "16 samples with a temperature setting of 0.7" scored as
  unbiased pass@1 (Chen et al. 2021). Up to 32768 tokens ("we use 32768 in our paper", issue #9). top_p not
  specified; our choice: 1.0, the authors' eval/eval.sh@2284c6a (whose own defaults are greedy everywhere, one run
  per benchmark). Grading rule `boxed`.
- `limo-v3`: LIMO paper v3 (Jul 2025) §5: pass@1 with greedy decoding on the larger benchmarks; on AIME24, AMC23
  and CHMath (our `cn_math_2024`) 4 samples at temperature 0.6 scored as unbiased pass@1; at most 32,768 output
  tokens. Read from a third-party summary of v3 §5 checked against arXiv v3 (the store here shows only the paper's
  abstract), so quote it as "v3 §5 as summarised", not verbatim. top_p is not specified in v3; our choice: 1.0,
  the value of the authors' eval.sh. Grading rule `boxed` (the authors' grader).

A recipe may define its own under `eval.protocols` (name -> {default: {...}, benchmarks: {name: {...}}}) and
select one with `eval.protocol`. A benchmark a protocol names must be registered; an unknown one is an error.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from limo.engines.base import SamplingParams, SettingError
from limo.errors import LimoError

PAPER_MAX_TOKENS = 32768  # GAIR-NLP/LIMO eval/eval.sh@2284c6a `--max_tokens 32768`; LIMO v3 §5: 32,768 tokens
METRICS = ("pass@1", "unbiased-pass@1")
RULES = ("boxed", "extended")


@dataclass(frozen=True)
class BenchmarkProtocol:
    """How one benchmark is sampled and scored. `unbiased-pass@1` with n samples is the mean fraction correct
    (Chen et al. 2021's estimator at k=1); `pass@1` is one greedy sample."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = PAPER_MAX_TOKENS
    metric: str = "pass@1"
    grading: str = "extended"

    def __post_init__(self):
        if self.n < 1:
            raise LimoError(f"protocol: n must be >= 1, got {self.n}")
        try:  # the decoding settings follow the engines' own rules
            SamplingParams(temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_tokens)
        except SettingError as e:
            raise LimoError(f"protocol: {e}") from None
        if self.metric not in METRICS:
            raise LimoError(f"protocol: unknown metric {self.metric!r}; known: {', '.join(METRICS)}")
        if self.grading not in RULES:
            raise LimoError(f"protocol: unknown grading rule {self.grading!r}; known: {', '.join(RULES)}")
        if self.n > 1 and self.metric == "pass@1":
            object.__setattr__(self, "metric", "unbiased-pass@1")


@dataclass(frozen=True)
class Protocol:
    name: str
    default: BenchmarkProtocol
    benchmarks: dict[str, BenchmarkProtocol] = field(default_factory=dict)
    source: str = "not specified"

    def for_benchmark(self, name: str) -> BenchmarkProtocol:
        return self.benchmarks.get(name, self.default)

    def check_benchmarks(self, known: list[str]) -> None:
        unknown = [b for b in self.benchmarks if b not in known]
        if unknown:
            raise LimoError(
                f"protocol {self.name!r}: unknown benchmark {unknown[0]!r}; registered: {', '.join(sorted(known))}"
            )


# the benchmarks with fewer than 50 problems, which both versions sample (v1 §4.2 via issue #17; v3 §5)
_SMALL_BENCHMARKS = ("aime24", "amc23", "cn_math_2024")
_V1_SAMPLED = BenchmarkProtocol(n=16, temperature=0.7, metric="unbiased-pass@1", grading="boxed")
_V3_SAMPLED = BenchmarkProtocol(n=4, temperature=0.6, metric="unbiased-pass@1", grading="boxed")

PROTOCOLS: dict[str, Protocol] = {
    "greedy": Protocol("greedy", BenchmarkProtocol(), source="limo default: greedy pass@1, rule extended"),
    "limo-v1": Protocol(
        "limo-v1",
        BenchmarkProtocol(grading="boxed"),
        dict.fromkeys(_SMALL_BENCHMARKS, _V1_SAMPLED),
        source="LIMO v1 §4.2 as quoted by the authors in GAIR-NLP/LIMO issue #17: greedy single sample, but 16 "
        "samples at T=0.7 with unbiased pass@1 on AIME24, AMC23, CHMath; 32768 max tokens (issue #9). top_p not "
        "specified; our choice 1.0 (eval/eval.sh@2284c6a). Grader: eval/utils/parser.py extract_answer (last box)",
    ),
    "limo-v3": Protocol(
        "limo-v3",
        BenchmarkProtocol(grading="boxed"),
        dict.fromkeys(_SMALL_BENCHMARKS, _V3_SAMPLED),
        source="LIMO v3 §5 (as summarised; paper text not readable here): greedy pass@1, but 4 samples at "
        "T=0.6 with unbiased pass@1 on AIME24, AMC23, CHMath; 32,768 max tokens. top_p not specified; "
        "our choice 1.0 (GAIR-NLP/LIMO eval/eval.sh@2284c6a)",
    ),
}


def protocol_from_dict(name: str, data: dict[str, Any], where: str = "eval.protocols") -> Protocol:
    """A user protocol: {default: {n, temperature, ...}, benchmarks: {name: {...}}, source: str}."""
    if not isinstance(data, dict):
        raise LimoError(f"{where}.{name}: expected a mapping with `default` and/or `benchmarks`")
    extra = set(data) - {"default", "benchmarks", "source"}
    if extra:
        raise LimoError(f"{where}.{name}: unknown key {sorted(extra)[0]!r} (allowed: default, benchmarks, source)")
    fields = {f.name for f in dataclasses.fields(BenchmarkProtocol)}

    def one(spec: Any, at: str, base: BenchmarkProtocol) -> BenchmarkProtocol:
        if not isinstance(spec, dict):
            raise LimoError(f"{at}: expected a mapping of {', '.join(sorted(fields))}")
        bad = set(spec) - fields
        if bad:
            raise LimoError(f"{at}: unknown key {sorted(bad)[0]!r} (allowed: {', '.join(sorted(fields))})")
        try:
            return dataclasses.replace(base, **spec)
        except LimoError as e:
            raise LimoError(f"{at}: {e}") from None
        except TypeError as e:
            raise LimoError(f"{at}: {e}") from None

    default = one(data.get("default", {}), f"{where}.{name}.default", BenchmarkProtocol())
    per = {b: one(s, f"{where}.{name}.benchmarks.{b}", default) for b, s in (data.get("benchmarks") or {}).items()}
    return Protocol(name, default, per, source=str(data.get("source", "user-defined in the recipe")))


def get_protocol(name: str, user: dict[str, Protocol] | None = None) -> Protocol:
    found = (user or {}).get(name) or PROTOCOLS.get(name)
    if found is None:
        known = sorted({*PROTOCOLS, *(user or {})})
        raise LimoError(f"unknown protocol {name!r}; known: {', '.join(known)} (or define one under eval.protocols)")
    return found
