"""Shared fixtures. Tests read the real data from ../shared/data (env LIMO_DATA overrides).

Each test gets its own LIMO_CACHE-free generation cache via `tmp_path`; converted models are shared in the user's
limo cache so the GGUF is de-quantised once per machine.
"""

from pathlib import Path

import pytest
import yaml

from limo.paths import REPO_ROOT, data_dir


@pytest.fixture(scope="session")
def shared_data():
    path = data_dir()
    assert (path / "benchmarks").is_dir(), f"real data not found at {path}; set LIMO_DATA"
    return path


@pytest.fixture(scope="session")
def smollm2_backend():
    """The real embedded model, loaded once per test session (hf backend, CPU)."""
    from limo.engines.base import EngineConfig
    from limo.engines.hf import HFBackend

    return HFBackend(EngineConfig(model="smollm2-135m", engine="hf", batch_size=8))


@pytest.fixture
def smollm2_engine(smollm2_backend, tmp_path):
    """A cached engine over the shared backend, with a fresh cache file per test."""
    from limo.engines.base import EngineConfig
    from limo.engines.cache import CachedEngine, GenerationCache

    engine = CachedEngine(
        EngineConfig(model="smollm2-135m", engine="hf", batch_size=8), GenerationCache(tmp_path / "gen.sqlite")
    )
    engine._backend = smollm2_backend
    return engine


def _tiny_recipe(tmp_path: Path, **train_overrides) -> Path:
    """A tiny `limo run` recipe: our demo pool, the embedded model, a 4-problem benchmark."""
    recipe = {
        "name": "tiny",
        "seed": 0,
        "pool": {"sources": [{"name": "demo", "path": str(REPO_ROOT / "recipes/data/demo_pool.jsonl"), "limit": 12}]},
        "difficulty": {
            "weak": {
                "engine": {"model": "smollm2-135m", "engine": "hf", "batch_size": 12},
                "sampling": {"temperature": 0.7, "max_tokens": 24, "seed": 0},
                "n": 1,
            },
            "weak_drop_at": 1,
        },
        "diversity": {"target_size": 10},
        "solutions": {"models": [], "columns": ["solution"]},
        "score": {"levels": "quantile", "length_words": [5, 30, 8000]},
        "select": {"target_size": 8},
        "train": {
            "model": "smollm2-135m",
            "chat_template": "chatml",
            "cutoff": 256,
            "learning_rate": 1e-4,
            "epochs": 1,
            "max_steps": 2,
            "global_batch_size": 2,
            "per_device_batch_size": 2,
            "gradient_checkpointing": False,
            "save_strategy": "no",
            **train_overrides,
        },
        "eval": {
            "benchmarks": [str(REPO_ROOT / "tests/data/tiny_bench.jsonl")],
            "max_tokens": 24,
            "engine": {"engine": "hf", "batch_size": 4},
        },
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


@pytest.fixture
def tiny_recipe():
    """Factory: tiny_recipe(tmp_path, **train_overrides) -> path of a tiny end-to-end recipe."""
    return _tiny_recipe


# --- exit status ------------------------------------------------------------------------------------------------
# After every test has passed and the summary is printed, a full run (slow tests included) has ended in SIGSEGV
# during the interpreter's own teardown (native libraries loaded in-process by the slow tests: torch, DeepSpeed,
# Ray, pyarrow), which made `make test` fail with every test green. We end the process with pytest's own exit
# status once pytest is completely done, before that teardown runs. It hides nothing a test checks: every result,
# the summary and every plugin's unconfigure have already happened.
_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session, exitstatus):
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    import os
    import sys

    if _EXIT_STATUS and not hasattr(config, "workerinput"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[-1])
