"""Where limo finds the shared data and keeps its caches.

`LIMO_DATA` overrides the data folder (default: ../shared/data next to the repository).
`LIMO_CACHE` overrides the cache folder (default: ~/.cache/limo).
"""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """The folder with benchmarks/, pools/ and traces/ (env LIMO_DATA overrides)."""
    env = os.environ.get("LIMO_DATA")
    if env:
        return Path(env)
    return (REPO_ROOT.parent / "shared" / "data").resolve()


def cache_dir() -> Path:
    """Where converted models and the default generation cache live (env LIMO_CACHE overrides)."""
    env = os.environ.get("LIMO_CACHE")
    path = Path(env) if env else Path.home() / ".cache" / "limo"
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_generation_cache() -> Path:
    """The SQLite generation cache used when a command is not given one."""
    return cache_dir() / "generations.sqlite"
