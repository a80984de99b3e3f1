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
    layer_activation_bytes_per_token,
    lm_head_bytes,
    model_state_bytes,
    plan_batch,
    shape_from_config,
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
    assert w / GB == 128 + 64  # fp32 weights (sft.py keeps them under DDP) + autocast's bf16 copies
    assert g / GB == 128 + 128  # fp32 gradients + DDP's gradient buckets (one more copy)
    assert o / GB == 256  # Adam m + v in fp32 (the fp32 weights are the master copy)
    w, g, o, _ = model_state_bytes(32e9, "zero2", 8)
    assert (w / GB, g / GB, o / GB) == (64, 8, 48)
    w, g, o, _ = model_state_bytes(32e9, "zero3", 8)
    assert (w + g + o) / GB == 64  # 16 bytes/param (ZeRO paper) = 512 GB of states over 8 GPUs
    assert model_state_bytes(32e9, "fsdp", 16)[0] / GB == 8  # FSDP2 fp32 shards
    w, g, o, cpu = model_state_bytes(32e9, "zero3-offload", 8)
    assert (w, g, o) == (0, 0, 0) and cpu / GB == 64
    assert model_state_bytes(1e9, "ddp", 1, precision="fp32")[:3] == (4e9, 4e9, 8e9)  # CPU: no copies, no buckets


def test_activations_by_hand():
    # TINY: h 4, q_dim 4, kv_dim 2, heads 2, intermediate 8; bf16 (B = 2) per token and layer:
    # norms 2 * (4 + 2) * 4 = 48; attention 2 * (3 * 4 + 2 * 2) + 4 * 2 = 40; MLP 4 * 2 * 8 = 64 -> 152
    assert layer_activation_bytes_per_token(TINY, 2) == 152
    assert layer_activation_bytes_per_token(TINY, 4) == 2 * 8 * 4 + 4 * 16 + 8 + 16 * 8  # fp32: 328
    s, b = 1000, 2
    final_norm = (4 + 2) * 4 * s * b
    assert activation_bytes(TINY, s, b, checkpointing=False) == 2 * 152 * s * b + final_norm
    assert activation_bytes(TINY, s, b, checkpointing=True) == 2 * 2 * 4 * s * b + 2 * 152 * s * b + final_norm


def test_intermediate_size_is_the_configs():
    """Qwen2.5-32B's MLP is 27648 = 5.4 x 5120 wide: the MLP term uses it, not 4 x hidden."""
    qwen = KNOWN_SHAPES["Qwen/Qwen2.5-32B-Instruct"]
    assert qwen.intermediate / qwen.hidden == pytest.approx(5.4)
    four_x = ModelShape(5120, 64, 4 * 5120, 40, 8, 152064, qkv_bias=True)
    diff = layer_activation_bytes_per_token(qwen, 2) - layer_activation_bytes_per_token(four_x, 2)
    assert diff == 4 * 2 * (27648 - 4 * 5120)


def test_fused_lm_head_never_counts_full_logits():
    """TRL's fused head: one 4096 x 32768 tile + fp32 grads of the head weight and hidden states, not seq x vocab."""
    qwen = KNOWN_SHAPES["Qwen/Qwen2.5-32B-Instruct"]
    head = lm_head_bytes(qwen, 16384, 2, gathered=False)
    assert head == 4096 * 32768 * 2 + 4 * 152064 * 5120 + 4 * 16384 * 5120 + 24 * 16384
    assert head < 8 * 16384 * 152064 / 4  # the old full-logits term (fp32 logits + grad) was over 4x larger
    assert lm_head_bytes(qwen, 16384, 2, gathered=True) - head == 2 * 152064 * 5120  # ZeRO-3 gathers it in bf16


def test_estimate_totals_and_lora_by_hand():
    plan = estimate(TINY, "ddp", 1, 100, gpu_memory_gb=1, context_gb=0.0)
    assert plan.weights_gb * GB == pytest.approx(6 * TINY_PARAMS)
    states = 18 * TINY_PARAMS  # fp32 weights 4 + bf16 copies 2 + fp32 grads 4 + Adam 8; one GPU: no buckets
    act = activation_bytes(TINY, 100, 1, True)
    assert plan.total_gb * GB == pytest.approx(states + act + lm_head_bytes(TINY, 100, 2, False))
    with_context = estimate(TINY, "ddp", 1, 100, gpu_memory_gb=1)
    assert with_context.total_gb - plan.total_gb == pytest.approx(2.0)  # default CUDA/NCCL context on a GPU
    # LoRA r=2 on q and v: per layer 2*(4+4) + 2*(4+2) = 28, two layers -> 56 trainable params
    lora = estimate(TINY, "lora", 1, 100, lora_r=2, lora_targets=["q_proj", "v_proj"])
    assert lora.trainable_params == 56
    assert lora.weights_gb * GB == pytest.approx(2 * TINY_PARAMS + 2 * 56)
    assert lora.optimizer_gb * GB == pytest.approx(12 * 56)
    q = estimate(TINY, "qlora", 1, 100, lora_r=2, lora_targets=["q_proj", "v_proj"])
    assert q.weights_gb * GB == pytest.approx(QLORA_BITS / 8 * TINY_PARAMS + 2 * 56)
    with pytest.raises(LimoError, match="target_modules"):
        estimate(TINY, "lora", 1, 100, lora_targets=["qkv"])


def test_32b_at_16k_launches_the_recipes_recommend():
    """The corrected plan: plain ZeRO-3 on 8 x 80 GB does not fit Qwen2.5-32B at 16384 tokens; 16 x 80 GB ZeRO-3 and
    8 x 80 GB with offload do (the launches README and recipes/limo-qwen2.5-32b.yaml recommend)."""
    qwen32 = KNOWN_SHAPES["Qwen/Qwen2.5-32B-Instruct"]
    eight = estimate(qwen32, "zero3", 8, 16384, gpu_memory_gb=80)
    assert not eight.fits and any("zero3-offload" in s for s in eight.suggestions)
    assert estimate(qwen32, "zero3", 16, 16384, gpu_memory_gb=80).fits
    offload = estimate(qwen32, "zero3-offload", 8, 16384, gpu_memory_gb=80)
    assert offload.fits and offload.cpu_offload_gb == pytest.approx(16 * qwen32.params() / 8 / GB)
    no_ckpt = estimate(qwen32, "zero3", 16, 16384, gradient_checkpointing=False, gpu_memory_gb=80)
    assert not no_ckpt.fits and "enable gradient_checkpointing" in no_ckpt.suggestions
    qwen7 = KNOWN_SHAPES["Qwen/Qwen2.5-7B-Instruct"]
    assert estimate(qwen7, "zero3", 8, 16384, gpu_memory_gb=80).fits
    mistral = KNOWN_SHAPES["mistralai/Mistral-Small-24B-Instruct-2501"]
    assert not estimate(mistral, "zero3", 8, 16384, gpu_memory_gb=80).fits
    assert estimate(mistral, "zero3-offload", 8, 16384, gpu_memory_gb=80).fits


@pytest.mark.slow
@pytest.mark.parametrize("checkpointing", [False, True])
def test_plan_within_25_percent_of_measured_peak_rss(checkpointing):
    """A real training step of a 13M-parameter Qwen2-shaped model at 1024 tokens on CPU (tests/train/rss_probe.py:
    fp32, TRL's fused head, AdamW, accumulation 2): the plan's model states + activations + LM head within +-25%
    of the measured peak RSS increase."""
    import subprocess
    import sys
    from pathlib import Path

    from transformers import Qwen2Config

    sys.path.insert(0, str(Path(__file__).parent))
    from rss_probe import CONFIG

    probe = [sys.executable, str(Path(__file__).parent / "rss_probe.py"), "--seq", "1024"]
    res = subprocess.run(probe + (["--checkpointing"] if checkpointing else []), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    measured = json.loads(res.stdout.strip().splitlines()[-1])
    shape = shape_from_config(Qwen2Config(**CONFIG))
    assert shape.params() == measured["params"]
    plan = estimate(shape, "ddp", 1, 1024, 1, checkpointing, precision="fp32")
    ratio = plan.states_and_activations_gb * GB / measured["peak_bytes"]
    print(f"plan {plan.states_and_activations_gb:.3f} GB, measured {measured['peak_bytes'] / GB:.3f} GB: {ratio:.3f}")
    assert 0.75 <= ratio <= 1.25


def test_global_batch_bookkeeping():
    assert plan_batch(64, 1, 8).accumulation == 8
    assert plan_batch(64, 1, 16).accumulation == 4  # more devices: less accumulation, same global batch
    assert plan_batch(64, 2, 1).accumulation == 32
    p = plan_batch(64, 2, 4)
    assert p.per_device * p.accumulation * p.devices == 64
    with pytest.raises(LimoError, match=r"not a multiple.*\[1, 2, 4, 8, 16, 32\]"):
        plan_batch(64, 2, 3)


def test_plan_only_cli_on_the_paper_recipe(tmp_path):
    from limo.recipes import load_recipe
    from limo.train.sft import run_train

    cfg = load_recipe("recipes/limo-qwen2.5-32b.yaml").train
    assert (cfg.learning_rate, cfg.epochs, cfg.cutoff, cfg.global_batch_size) == (5e-6, 15.0, 16384, 32)
    run_train(cfg, tmp_path, plan_only=True)
    plan = json.loads((tmp_path / "memory_plan.json").read_text())
    assert plan["memory"]["strategy"] == "zero3" and plan["memory"]["gpus"] == 16
    assert plan["batch"] == {"global_batch": 32, "per_device": 1, "devices": 16, "accumulation": 2}
    cfg8 = load_recipe("recipes/limo-qwen2.5-32b.yaml", ["gpus=8"], default_section="train").train
    run_train(cfg8, tmp_path / "8", plan_only=True)
    plan8 = json.loads((tmp_path / "8" / "memory_plan.json").read_text())
    assert plan8["batch"]["accumulation"] == 4 and plan8["memory"]["suggestions"]
