"""Fixtures for engine tests: a REAL llama.cpp server serving the embedded SmolLM2 GGUF.

.venv/bin/pytest tests/engines
"""

import pytest
from llama_helpers import LlamaServer, free_port


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """One llama.cpp server for the whole session."""
    server = LlamaServer(free_port(), tmp_path_factory.mktemp("llama") / "server.log").start()
    yield server
    server.kill()


@pytest.fixture
def own_llama_server(tmp_path):
    """A llama.cpp server for one test (tests that kill it)."""
    server = LlamaServer(free_port(), tmp_path / "server.log").start()
    yield server
    server.kill()
