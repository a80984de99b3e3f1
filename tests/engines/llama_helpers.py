"""Helpers for engine tests: a REAL llama.cpp server (llama-cpp-python[server]) serving the embedded SmolLM2 GGUF,
and a free-port finder. Imported by conftest.py and the test modules of this folder."""

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LlamaServer:
    port: int
    log: Path
    proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, wait_s: float = 120.0) -> "LlamaServer":
        from limo.engines.models import gguf_path

        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path("smollm2-135m"))]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", "2048"]
        # llama-cpp-python 0.3.36 as `make setup` builds it on the 2-core dev box segfaults in llama_decode on any
        # batch of more than one token (the server dies on its first chat request); one-token batches avoid it and
        # only slow down reading the prompt. LIMO_LLAMA_N_BATCH overrides (e.g. 512 with a build that works).
        cmd += ["--n_batch", os.environ.get("LIMO_LLAMA_N_BATCH", "1")]
        self.proc = subprocess.Popen(cmd, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited with {self.proc.returncode}; see {self.log}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.kill()
        raise RuntimeError(f"llama.cpp server did not answer /v1/models within {wait_s}s; see {self.log}")

    def kill(self) -> None:
        """SIGKILL, like a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None
