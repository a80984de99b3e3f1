"""Helpers shared by the curation stages: model settings in recipes, row bookkeeping (text keys: limo.text).

A recipe names a model as `{engine: {EngineConfig fields}, sampling: {SamplingParams fields}, n: samples}`;
`ModelSpec` is that block. Stages never import heavy modules at import time.
"""

from dataclasses import dataclass, field
from typing import Any

from datasets import Dataset

from limo.engines.base import EngineConfig, SamplingParams
from limo.records import DROP_REASON, chat_messages


@dataclass
class ModelSpec:
    """One model in a recipe: how it is served, how it samples, and how many samples per problem."""

    engine: EngineConfig = field(default_factory=EngineConfig)
    sampling: SamplingParams = field(default_factory=SamplingParams)
    n: int = 1

    def __post_init__(self):
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")

    @property
    def name(self) -> str:
        return self.engine.identity


def problem_prompt(problem: str) -> list[dict[str, str]]:
    """The chat prompt every stage sends a problem with (LIMO system prompt + the problem)."""
    return chat_messages(problem)


def to_rows(ds: Dataset) -> list[dict[str, Any]]:
    return ds.to_list() if len(ds) else []


def with_reason(rows: list[dict[str, Any]], reason: str, **extra: Any) -> list[dict[str, Any]]:
    """Copies of `rows` marked as dropped for `reason` (plus any extra columns)."""
    return [{**r, **extra, DROP_REASON: reason} for r in rows]
