"""Memory plan and global-batch bookkeeping against hand-computed values."""

import json

import pytest

from limo.errors import LimoError
from limo.train.memory import (
    GB,
    KNOWN_SHAPES,
    QLORA_BITS,
    ModelShape,
    activation_bytes,
    estimate,
    model_state_bytes,
    plan_batch,
)

# 2 layers, hidden 4, intermediate 8, 2 heads (head_dim 2), 1 kv head, vocab 10, untied:
# embed 40 + lm_head 40; per layer q 16 + k 8 + v 8 + o 16 + mlp 3*32=96 + 2 norms 8 = 152; final norm 4
TINY = ModelShape(hidden=4, layers=2, intermediate=8, heads=2, kv_heads=1, vocab=10)
TINY_PARAMS = 40 + 40 + 2 * 152 + 4


def test_param_count_by_hand():
    assert TINY.params() == TINY_PARAMS
    tied = ModelShape(hidden=4, layers=2, intermediate=8, heads=2, kv_heads=1, vocab=10, tied_embeddings=True)
    assert tied.params() == TINY_PARAMS - 40
    biased = ModelShape(hidden=4, layers=2, intermediate=8, heads=2, kv_heads=1, vocab=10, qkv_bias=True)
    assert biased.params() == TINY_PARAMS + 2 * (4 + 2 + 2)


def test_published_sizes():
    # model cards: Qwen2.5-7B 7.61B, Qwen2.5-1.5B 1.54B, Mistral-Small-24B 23.6B, Llama-3.1-8B 8.03B
    assert KNOWN_SHAPES["Qwen/Qwen2.5-7B-Instruct"].params() / 1e9 == pytest.approx(7.62, abs=0.02)
    assert KNOWN_SHAPES["Qwen/Qwen2.5-1.5B-Instruct"].params() / 1e9 == pytest.approx(1.54, abs=0.01)
    assert KNOWN_SHAPES["mistralai/Mistral-Small-24B-Instruct-2501"].params() / 1e9 == pytest.approx(23.57, abs=0.05)
    assert KNOWN_SHAPES["meta-llama/Llama-3.1-8B-Instruct"].params() / 1e9 == pytest.approx(8.03, abs=0.01)


def test_32b_model_states_by_hand():
    w, g, o, cpu = model_state_bytes(32e9, "ddp", 8)
    assert w / GB == 64  # bf16 weights: 2 bytes/param
    assert g / GB == 64  # bf16 gradients
    assert o / GB == 384  # fp32 master + Adam m + v: 12 bytes/param
    assert (w + g + o) / 32e9 == 16  # 16 bytes/param for mixed-precision Adam
    w, g, o, _ = model_state_bytes(32e9, "zero2", 8)
    assert (w / GB, g / GB, o / GB) == (64, 8, 48)
    w, g, o, _ = model_state_bytes(32e9, "zero3", 8)
    assert (w + g + o) / GB == 64  # 512 GB of states over 8 GPUs
    assert model_state_bytes(32e9, "fsdp", 16)[0] / GB == 4
    w, g, o, cpu = model_state_bytes(32e9, "zero3-offload", 8)
    assert (w, g, o) == (0, 0, 0) and cpu / GB == 64


def test_activations_by_hand():
    s, b, h, L, V = 1000, 2, 4, 2, 10
    assert activation_bytes(TINY, s, b, checkpointing=False) == L * 34 * s * b * h + 8 * s * b * V
    assert activation_bytes(TINY, s, b, checkpointing=True) == L * 2 * s * b * h + 34 * s * b * h + 8 * s * b * V


def test_estimate_totals_and_lora_by_hand():
    plan = estimate(TINY, "ddp", 1, 100, gpu_memory_gb=1)
    assert plan.weights_gb * GB == pytest.approx(2 * TINY_PARAMS)
    assert plan.total_gb * GB == pytest.approx(16 * TINY_PARAMS + activation_bytes(TINY, 100, 1, True))
    # LoRA r=2 on q and v: per layer 2*(4+4) + 2*(4+2) = 28, two layers -> 56 trainable params
    lora = estimate(TINY, "lora", 1, 100, lora_r=2, lora_targets=["q_proj", "v_proj"])
    assert lora.trainable_params == 56
    assert lora.weights_gb * GB == pytest.approx(2 * TINY_PARAMS + 2 * 56)
    assert lora.optimizer_gb * GB == pytest.approx(12 * 56)
    q = estimate(TINY, "qlora", 1, 100, lora_r=2, lora_targets=["q_proj", "v_proj"])
    assert q.weights_gb * GB == pytest.approx(QLORA_BITS / 8 * TINY_PARAMS + 2 * 56)
    with pytest.raises(LimoError, match="target_modules"):
        estimate(TINY, "lora", 1, 100, lora_targets=["qkv"])


def test_suggestions_when_it_does_not_fit():
    qwen32 = KNOWN_SHAPES["Qwen/Qwen2.5-32B-Instruct"]
    ddp = estimate(qwen32, "ddp", 8, 16384, gpu_memory_gb=80)
    assert not ddp.fits and ddp.total_gb > 500
    assert any("zero3-offload" in s for s in ddp.suggestions)
    no_ckpt = estimate(qwen32, "zero3", 16, 16384, gradient_checkpointing=False, gpu_memory_gb=80)
    assert not no_ckpt.fits and "enable gradient_checkpointing" in no_ckpt.suggestions
    assert no_ckpt.activations_no_ckpt_gb > 10 * (no_ckpt.activations_ckpt_gb - 8 * 16384 * qwen32.vocab / GB)
    short = estimate(qwen32, "zero3", 8, 16384, gpu_memory_gb=80)
    assert any("shorter cutoff" in s for s in short.suggestions)
    ok = estimate(qwen32, "zero3", 16, 16384, gpu_memory_gb=80)
    assert ok.fits and ok.suggestions == []


def test_global_batch_bookkeeping():
    assert plan_batch(64, 1, 8).accumulation == 8
    assert plan_batch(64, 1, 16).accumulation == 4  # more devices: less accumulation, same global batch
    assert plan_batch(64, 2, 1).accumulation == 32
    p = plan_batch(64, 2, 4)
    assert p.per_device * p.accumulation * p.devices == 64
    with pytest.raises(LimoError, match=r"not a multiple.*\[1, 2, 4, 8, 16, 32\]"):
        plan_batch(64, 2, 3)


def test_plan_only_cli_on_the_paper_recipe(tmp_path):
    from limo.train.sft import load_recipe, run_train

    cfg = load_recipe("recipes/limo-qwen2.5-32b.yaml")
    assert (cfg.learning_rate, cfg.epochs, cfg.cutoff, cfg.global_batch_size) == (5e-6, 15.0, 16384, 64)
    run_train(cfg, tmp_path, plan_only=True)
    plan = json.loads((tmp_path / "memory_plan.json").read_text())
    assert plan["memory"]["strategy"] == "zero3" and plan["memory"]["gpus"] == 16
    assert plan["batch"] == {"global_batch": 64, "per_device": 1, "devices": 16, "accumulation": 4}
    cfg8 = load_recipe("recipes/limo-qwen2.5-32b.yaml", ["gpus=8"])
    run_train(cfg8, tmp_path / "8", plan_only=True)
    plan8 = json.loads((tmp_path / "8" / "memory_plan.json").read_text())
    assert plan8["batch"]["accumulation"] == 8 and plan8["memory"]["suggestions"]
