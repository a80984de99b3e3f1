"""The persistent generation cache: reruns are free, kill -9 resumes to the same output, processes can share it.

.venv/bin/pytest tests/engines/test_cache.py
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from limo.engines.base import Completion, EngineConfig, SamplingParams
from limo.engines.cache import CachedEngine, GenerationCache


class CountingBackend:
    """Wraps the real backend and counts the batches and requests it is asked to generate."""

    def __init__(self, inner):
        self.inner = inner
        self.batch_size = inner.batch_size
        self.calls = 0
        self.requests = 0

    def generate_batch(self, requests):
        self.calls += 1
        self.requests += len(requests)
        return self.inner.generate_batch(requests)

    def close(self):
        pass


def counted_engine(backend, path) -> tuple[CachedEngine, CountingBackend]:
    engine = CachedEngine(EngineConfig(model="smollm2-135m", engine="hf", batch_size=8), GenerationCache(path))
    engine._backend = CountingBackend(backend)
    return engine, engine._backend


@pytest.mark.slow
def test_rerun_of_finished_generation_makes_no_backend_calls(smollm2_backend, tmp_path):
    prompts = [f"What is {i} plus {i + 1}?" for i in range(20)]
    sampling = SamplingParams(max_tokens=8)
    first, counter = counted_engine(smollm2_backend, tmp_path / "gen.sqlite")
    outs = first.generate(prompts, sampling)
    assert counter.requests == 20 and counter.calls == 3  # batches of 8, 8, 4
    again, counter2 = counted_engine(smollm2_backend, tmp_path / "gen.sqlite")
    outs2 = again.generate(prompts, sampling)
    assert counter2.calls == 0 and counter2.requests == 0
    assert again.stats.cache_hits == 20 and again.stats.generated == 0
    assert [o[0].text for o in outs2] == [o[0].text for o in outs]
    assert all(o[0].cached for o in outs2)


def test_errors_are_never_cached(tmp_path):
    cache = GenerationCache(tmp_path / "gen.sqlite")
    ok = Completion("fine", 3, 2, "stop")
    bad = Completion("", 3, 0, "error")
    assert cache.put_many("m", [("k1", ok), ("k2", bad)]) == 1
    assert set(cache.get_many(["k1", "k2"])) == {"k1"}
    assert cache.put_many("m", [("k1", Completion("other", 3, 2, "stop"))]) == 0  # the first stored one wins
    assert cache.get_many(["k1"])["k1"].text == "fine"


def _generate_cmd(inp, out, cache) -> list[str]:
    return [
        sys.executable, "-m", "limo.cli", "generate", "--input", str(inp), "--out", str(out), "--cache", str(cache),
        "--model", "smollm2-135m", "--engine", "hf", "--batch-size", "2", "--max-tokens", "12",
        "--temperature", "0.8", "--seed", "123",
    ]  # fmt: skip


def _env() -> dict:
    # one torch thread per process: on a busy shared CPU, OpenMP spin-waiting makes 2 threads ~10x slower than 1
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _count(path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=30) as conn:
            return conn.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
    except sqlite3.OperationalError:  # the table is not created yet
        return 0


@pytest.mark.slow
def test_kill_9_mid_run_then_rerun_equals_uninterrupted_run(tmp_path):
    inp = tmp_path / "prompts.jsonl"
    rows = [{"id": f"p{i}", "messages": [{"role": "user", "content": f"Tell me a fact about the number {i}."}]}
            for i in range(20)]  # fmt: skip
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cache = tmp_path / "killed.sqlite"
    proc = subprocess.Popen(_generate_cmd(inp, tmp_path / "killed.jsonl", cache), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=_env())  # fmt: skip
    deadline = time.monotonic() + 300
    while _count(cache) < 4 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_at_kill = _count(cache)
    assert 4 <= done_at_kill < 20
    assert not (tmp_path / "killed.jsonl").exists()

    resumed = subprocess.run(
        _generate_cmd(inp, tmp_path / "killed.jsonl", cache), capture_output=True, text=True, env=_env()
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    clean = subprocess.run(_generate_cmd(inp, tmp_path / "clean.jsonl", tmp_path / "clean.sqlite"),
                           capture_output=True, text=True, env=_env())  # fmt: skip
    assert clean.returncode == 0, clean.stderr[-2000:]

    killed_out = (tmp_path / "killed.jsonl").read_text()
    assert killed_out == (tmp_path / "clean.jsonl").read_text()
    assert len(killed_out.splitlines()) == 20
    with sqlite3.connect(cache) as conn:
        assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM generations").fetchone() == (20, 20)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


WRITER = textwrap.dedent(
    """
    import sys
    from limo.engines.base import Completion
    from limo.engines.cache import GenerationCache
    cache = GenerationCache(sys.argv[1])
    who = sys.argv[2]
    for start in range(0, 400, 8):
        keys = [f"k{i}" for i in range(start, start + 8)]
        cache.put_many("m", [(k, Completion(f"{who}:{k}", 1, 1, "stop")) for k in keys])
        cache.get_many(keys)  # reads interleave with the other process's writes
    """
)


def test_two_processes_share_one_cache(tmp_path):
    path = tmp_path / "shared.sqlite"
    GenerationCache(path)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), who], stderr=subprocess.PIPE) for who in "AB"]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
    cache = GenerationCache(path)
    found = cache.get_many([f"k{i}" for i in range(400)])
    assert len(found) == 400 and cache.count() == 400
    for key, c in found.items():
        assert c.text in (f"A:{key}", f"B:{key}")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
