"""Engine throughput and cache speed, in one run on one machine.

1. `hf` engine, batched (batch 16) vs one prompt at a time: 16 MATH500 problems as LIMO chat prompts (system prompt
   + problem), greedy, 128 new tokens, a fresh cache per measurement (no cache hits). Acceptance: batched >= 3x.
2. `openai` engine against a real llama.cpp server (llama-cpp-python[server], same GGUF): concurrency 1 vs 4.
3. The generation cache: a 20-prompt generation, then the same generation again from a new engine on the same cache
   file. Acceptance: the rerun takes < 5% of the first run's time and makes 0 backend calls.

Throughput = completion tokens / wall seconds of `engine.generate` (model loading is excluded and timed apart).

    .venv/bin/python bench/engines.py [--threads 1] [--skip-openai] [--openai-prompts 8] [--openai-max-tokens 32]

Writes bench/results/engines.json and prints a table.
"""

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# keep bench/ off sys.path: bench/ray.py would shadow the real `ray` package for anything that probes for it
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import httpx  # noqa: E402
import torch  # noqa: E402

from limo.console import console  # noqa: E402
from limo.engines.base import EngineConfig, SamplingParams  # noqa: E402
from limo.engines.cache import CachedEngine, GenerationCache  # noqa: E402
from limo.engines.hf import HFBackend  # noqa: E402
from limo.engines.models import gguf_path  # noqa: E402
from limo.io import iter_jsonl  # noqa: E402
from limo.paths import data_dir  # noqa: E402
from limo.records import chat_messages  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "engines.json"


class CountingBackend:
    def __init__(self, inner):
        self.inner, self.batch_size, self.calls = inner, inner.batch_size, 0

    def generate_batch(self, requests):
        self.calls += 1
        return self.inner.generate_batch(requests)

    def close(self):
        pass


def math500_prompts(count: int, skip: int = 0) -> list[list[dict]]:
    rows = [row for _, row in iter_jsonl(data_dir() / "benchmarks" / "math500.jsonl")]
    return [chat_messages(r["problem"]) for r in rows[skip : skip + count]]


def timed_generate(backend, batch_size: int, prompts, sampling, cache_path: Path) -> dict:
    cfg = EngineConfig(model="smollm2-135m", engine="hf", batch_size=batch_size)
    engine = CachedEngine(cfg, GenerationCache(cache_path))
    backend.batch_size = batch_size
    counter = CountingBackend(backend)
    engine._backend = counter
    t0 = time.perf_counter()
    outs = engine.generate(prompts, sampling)
    seconds = time.perf_counter() - t0
    tokens = sum(c.completion_tokens for row in outs for c in row)
    return {
        "seconds": round(seconds, 3),
        "completion_tokens": tokens,
        "tokens_per_s": round(tokens / seconds, 2),
        "backend_calls": counter.calls,
        "cache_hits": engine.stats.cache_hits,
        "texts": [c.text for row in outs for c in row],
    }


def bench_hf(backend, tmp: Path, prompts, max_tokens: int) -> dict:
    sampling = SamplingParams(max_tokens=max_tokens)  # greedy
    batched = timed_generate(backend, 16, prompts, sampling, tmp / "hf_batched.sqlite")
    single = timed_generate(backend, 1, prompts, sampling, tmp / "hf_single.sqlite")
    same = sum(a == b for a, b in zip(batched.pop("texts"), single.pop("texts"), strict=True))
    return {
        "prompts": len(prompts),
        "max_new_tokens": max_tokens,
        "batched_16": batched,
        "one_at_a_time": single,
        "speedup": round(batched["tokens_per_s"] / single["tokens_per_s"], 2),
        "identical_outputs": f"{same}/{len(prompts)}",
    }


def bench_cache(backend, tmp: Path, prompts, max_tokens: int) -> dict:
    sampling = SamplingParams(max_tokens=max_tokens)
    path = tmp / "cache_bench.sqlite"
    first = timed_generate(backend, 16, prompts, sampling, path)
    rerun = timed_generate(backend, 16, prompts, sampling, path)
    for r in (first, rerun):
        r.pop("texts")
    return {
        "prompts": len(prompts),
        "max_new_tokens": max_tokens,
        "first_run": first,
        "rerun": rerun,
        "rerun_percent_of_first": round(100 * rerun["seconds"] / first["seconds"], 3),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_llama_server(log: Path, threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path("smollm2-135m"))]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", str(threads)]
    # the llama-cpp-python 0.3.36 build here segfaults on prompt batches of more than one token (see
    # tests/engines/llama_helpers.py); LIMO_LLAMA_N_BATCH=512 restores the default with a build that works
    cmd += ["--n_batch", os.environ.get("LIMO_LLAMA_N_BATCH", "1")]
    proc = subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(480):
        if proc.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited; see {log}")
        try:
            if httpx.get(url + "/models", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    proc.kill()
    raise RuntimeError(f"llama.cpp server did not start; see {log}")


def bench_openai(tmp: Path, prompts, max_tokens: int, threads: int) -> dict:
    proc, url = start_llama_server(tmp / "llama.log", threads)
    try:
        sampling = SamplingParams(max_tokens=max_tokens)
        out = {
            "server": f"llama-cpp-python server, n_threads={threads}",
            "prompts": len(prompts),
            "max_tokens": max_tokens,
        }
        # warm-up request (first-request setup is not throughput)
        CachedEngine(EngineConfig(engine="openai", base_url=url), GenerationCache(tmp / "warm.sqlite")).generate(
            ["Hello"], SamplingParams(max_tokens=4)
        )
        for conc in (1, 4):
            cfg = EngineConfig(model="smollm2-135m", engine="openai", base_url=url, concurrency=conc)
            engine = CachedEngine(cfg, GenerationCache(tmp / f"openai_{conc}.sqlite"))
            t0 = time.perf_counter()
            outs = engine.generate(prompts, sampling)
            seconds = time.perf_counter() - t0
            tokens = sum(c.completion_tokens for row in outs for c in row)
            out[f"concurrency_{conc}"] = {
                "seconds": round(seconds, 3),
                "completion_tokens": tokens,
                "tokens_per_s": round(tokens / seconds, 2),
                "http_calls": engine.backend.calls,
            }
        out["speedup_4_vs_1"] = round(out["concurrency_4"]["tokens_per_s"] / out["concurrency_1"]["tokens_per_s"], 2)
        return out
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch / llama.cpp threads (1: the box is shared)")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--skip-openai", action="store_true")
    ap.add_argument("--openai-prompts", type=int, default=8, help="llama.cpp prompt eval is slow on a busy 2-core box")
    ap.add_argument("--openai-max-tokens", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    backend = HFBackend(EngineConfig(model="smollm2-135m", engine="hf", batch_size=16, device="cpu"))
    load_s = time.perf_counter() - t0
    results: dict = {
        "machine": f"2-core CPU dev box, no GPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cpus)",
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": [round(x, 2) for x in load_before],
        "model": "smollm2-135m (SmolLM2-135M-Instruct, de-quantised GGUF, float32)",
        "model_load_seconds": round(load_s, 2),
    }
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        console.print("[bold]hf: batched (16) vs one at a time[/bold]")
        results["hf"] = bench_hf(backend, tmp, math500_prompts(16), args.max_tokens)
        console.print("[bold]cache: rerun of a 20-prompt generation[/bold]")
        results["cache"] = bench_cache(backend, tmp, math500_prompts(20, skip=16), 32)
        if not args.skip_openai:
            console.print("[bold]openai engine vs llama.cpp: concurrency 1 vs 4[/bold]")
            prompts = math500_prompts(args.openai_prompts)
            results["openai"] = bench_openai(tmp, prompts, args.openai_max_tokens, args.threads)
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)


def print_table(r: dict) -> None:
    from rich.table import Table

    t = Table(title=f"bench/engines.py ({r['machine']}, torch threads {r['torch_threads']})")
    for col in ("measurement", "seconds", "completion tokens", "tokens/s", "backend calls"):
        t.add_column(col)
    hf = r["hf"]
    for name, key in (("hf batched 16", "batched_16"), ("hf one at a time", "one_at_a_time")):
        m = hf[key]
        t.add_row(
            name, str(m["seconds"]), str(m["completion_tokens"]), str(m["tokens_per_s"]), str(m["backend_calls"])
        )
    c = r["cache"]
    for name, key in (("cache: first run (20 prompts)", "first_run"), ("cache: rerun", "rerun")):
        m = c[key]
        t.add_row(
            name, str(m["seconds"]), str(m["completion_tokens"]), str(m["tokens_per_s"]), str(m["backend_calls"])
        )
    if "openai" in r:
        for conc in (1, 4):
            m = r["openai"][f"concurrency_{conc}"]
            t.add_row(f"openai/llama.cpp concurrency {conc}", str(m["seconds"]), str(m["completion_tokens"]),
                      str(m["tokens_per_s"]), str(m["http_calls"]))  # fmt: skip
    console.print(t)
    console.print(
        f"hf batched speedup: {hf['speedup']}x (acceptance >= 3x); identical outputs {hf['identical_outputs']}"
    )
    console.print(f"cache rerun: {c['rerun_percent_of_first']}% of the first run (acceptance < 5%)")
    if "openai" in r:
        console.print(f"openai concurrency 4 vs 1: {r['openai']['speedup_4_vs_1']}x")


if __name__ == "__main__":
    main()
