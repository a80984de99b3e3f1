"""Shared fixtures. Tests read the real data from ../shared/data (env LIMO_DATA overrides).

Each test gets its own LIMO_CACHE-free generation cache via `tmp_path`; converted models are shared in the user's
limo cache so the GGUF is de-quantised once per machine.
"""

import pytest

from limo.paths import data_dir


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

    engine = CachedEngine(EngineConfig(model="smollm2-135m", engine="hf", batch_size=8), GenerationCache(tmp_path / "gen.sqlite"))
    engine._backend = smollm2_backend
    return engine
