"""The GPU check's CPU-runnable logic: causal-attention FLOPs and MFU by hand, and a CPU dry run of
bench/train_gpu.py at tiny sizes through the real `limo train` path (its numbers are CPU numbers, never GPU ones)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from limo.train.flops import attention_flops_per_token, matmul_params, mfu, train_flops, train_flops_per_token
from limo.train.memory import KNOWN_SHAPES, ModelShape

ROOT = Path(__file__).resolve().parents[2]
# 2 layers, hidden 4, intermediate 8, 2 heads (head_dim 2), 1 kv head, vocab 10
TINY = ModelShape(hidden=4, layers=2, intermediate=8, heads=2, kv_heads=1, vocab=10)


def test_flops_by_hand():
    # matmuls per layer: q 16 + k 8 + v 8 + o 16 + mlp 96 = 144; 2 layers + head 40 = 328
    assert matmul_params(TINY) == 328
    # causal: a 3-token sequence averages 2 keys per query; QK^T + AV = 2 * 2 * q_dim(4) per key, 2 layers
    assert attention_flops_per_token(TINY, 3) == 2 * 4 * 4 * 2
    assert attention_flops_per_token(TINY, 3, causal=False) == 2 * 4 * 4 * 3
    assert train_flops_per_token(TINY, 3) == 3 * (2 * 328 + 64)
    assert train_flops(TINY, [3, 3]) == 6 * train_flops_per_token(TINY, 3)
    assert mfu(1e12, 2.0, 1e12) == 0.5
    with pytest.raises(ValueError):
        mfu(1.0, 0.0, 1.0)


def test_qwen_1p5b_flops_near_6n():
    """At 8k tokens causal attention adds ~20% to 6N for Qwen2.5-1.5B (counting it as full would add twice that)."""
    shape = KNOWN_SHAPES["Qwen/Qwen2.5-1.5B-Instruct"]
    six_n = 6 * matmul_params(shape)
    causal = train_flops_per_token(shape, 8192) / six_n
    full = train_flops_per_token(shape, 8192, causal=False) / six_n
    assert 1.1 < causal < 1.3 and full - 1 == pytest.approx(2 * (causal - 1), rel=1e-3)


@pytest.mark.slow
def test_gpu_check_cpu_dry_run(tmp_path):
    res = subprocess.run(
        [sys.executable, "bench/train_gpu.py", "--cpu-dry-run", "--steps", "2", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    out = json.loads((tmp_path / "gpu_check.json").read_text())
    assert out["device"].startswith("cpu (dry run")
    assert [r["seq"] for r in out["results"]] == [256, 512]
    for r in out["results"]:
        assert r["attention"] == "sdpa" and r["tokens_per_s"] > 0 and 0 < r["mfu_vs_measured_peak"]
        assert r["plan_total_gb"] > 0 and r["loss"] > 0
