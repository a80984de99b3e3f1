"""Model engines behind one interface. Use `make_engine(ModelConfig)`; see base.py for the interface."""

from limo.engines.base import Completion, EngineConfig, Prompt, SamplingParams, make_engine

__all__ = ["Completion", "EngineConfig", "Prompt", "SamplingParams", "make_engine"]
