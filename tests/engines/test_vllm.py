"""The `vllm` engine can't run on this CPU box; check that vllm is imported only when used and that a missing vllm
gives a clear LimoError.

    .venv/bin/pytest tests/engines/test_vllm.py
"""

import importlib.util
import subprocess
import sys

import pytest

from limo.engines.base import EngineConfig, make_backend
from limo.errors import LimoError


def test_vllm_is_not_imported_with_the_package():
    code = "import sys, limo.engines, limo.engines.vllm, limo.cli; print('vllm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_missing_vllm_gives_clear_error():
    with pytest.raises(LimoError, match=r"vllm engine needs the 'vllm' package.*pip install -e '\.\[vllm\]'"):
        make_backend(EngineConfig(model="smollm2-135m", engine="vllm"))


def test_model_path_for_gguf_alias():
    from limo.engines.models import gguf_path
    from limo.engines.vllm import model_path

    assert model_path("smollm2-135m") == str(gguf_path("smollm2-135m"))
    assert model_path("Qwen/Qwen2.5-7B-Instruct") == "Qwen/Qwen2.5-7B-Instruct"
