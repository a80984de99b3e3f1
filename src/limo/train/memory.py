"""Memory plan and global-batch bookkeeping, printed and saved (DIR/memory_plan.json) before training starts.

Per GPU, in GB (1 GB = 1e9 bytes), for a strategy, a GPU count and the training precision:
  model states    ZeRO paper accounting (Rajbhandari et al. 2020, §3.1) for DeepSpeed: bf16 weights 2 B/param,
                  bf16 grads 2 B/param, fp32 master + Adam m + v 12 B/param; ZeRO-2 shards grads+optimizer, ZeRO-3
                  also the weights, ZeRO-3-offload keeps them in CPU RAM. Plain DDP is what sft.py runs: fp32 weights
                  (4) + fp32 grads (4) + Adam m, v (8), plus autocast's bf16 weight copies (2) and DDP's gradient
                  buckets, one more copy of the gradients (torch DistributedDataParallel docstring,
                  `gradient_as_bucket_view`: "the saved memory size will be equal to the total gradients size").
                  FSDP2: fp32 shards 16 B/param over GPUs. lora/qlora: frozen base in bf16 (2 B) or NF4 with double
                  quantisation (4.127 bits, QLoRA paper §2); only the adapters (r * (in + out) per matrix) train.
  buffers         ZeRO: reduce bucket + ZeRO-3 prefetch bucket, "auto" = hidden^2 and 0.9 * hidden^2 elements
                  (transformers integrations/deepspeed.py, `trainer_config_finalize`), in bf16; ZeRO-3/FSDP also
                  hold a gathered layer and one prefetched layer.
  activations     counted tensor by tensor for a Llama/Qwen2/Mistral decoder layer with the model's real sizes
                  (intermediate size from its config: Qwen2.5 uses ~5.4 x hidden, not 4 x), attention through
                  flash/sdpa kernels (no seq x seq matrix): per token and layer two RMSNorms (fp32 input + output,
                  (4 + B) * hidden bytes each), rotated q and k, v, attention output and its contiguous copy
                  (B * (3 * q_dim + 2 * kv_dim)), the log-sum-exp (4 B per head) and the SwiGLU MLP's gate, silu,
                  up and product (4 * B * intermediate); B = 2 for bf16, 4 for fp32. With gradient checkpointing only
                  each layer's input (B * hidden) is kept, plus one layer recomputed and its gradients (2 layers).
  LM head         TRL's fused LM head never materialises the (tokens x vocab) logits (trl 1.16
                  trainer/utils.py `add_fused_lm_head`, kernels/chunked_logprob.py): it projects tiles of 4096
                  tokens x 32768 vocab entries (B bytes each) and in backward accumulates an fp32 gradient of the
                  head weight (vocab x hidden x 4 B) and of the hidden states (tokens x hidden x 4 B); under ZeRO-3
                  the head weight is gathered in bf16 for it. On CPU (no Triton) torch ops fold each tile and keep
                  ~8 fp32 tile-sized temporaries alive (`_backward_tile`), which dominates a small model's peak.
  context         the CUDA context with the cuBLAS/NCCL kernels loaded and NCCL's buffers: not measured here (no GPU
                  on the dev box); our choice: 2.0 GB per GPU (`context_gb` overrides); gpu_check.sh measures it.
CPU runs (precision fp32, one process) have no context, autocast copies or buckets; tests/train/test_train_memory.py
checks this plan against the measured peak RSS of a real training step of a small model.

    limo train recipes/limo-qwen2.5-32b.yaml --plan-only --set gpus=16
"""

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from limo.errors import LimoError

GB = 1e9
Strategy = Literal["ddp", "zero2", "zero3", "zero3-offload", "fsdp", "lora", "qlora"]
STRATEGIES = ["ddp", "zero2", "zero3", "zero3-offload", "fsdp", "lora", "qlora"]
QLORA_BITS = 4.127  # QLoRA §2: NF4 (4 bits) + double-quantised constants (0.127 bits/param)
LORA_TARGETS_ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs from a decoder-only transformer config (Llama/Qwen/Mistral layout, SwiGLU MLP)."""

    hidden: int
    layers: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int
    head_dim: int | None = None
    tied_embeddings: bool = False
    qkv_bias: bool = False

    @property
    def hd(self) -> int:
        return self.head_dim or self.hidden // self.heads

    def matrices(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each linear layer inside one transformer block."""
        q, kv = self.heads * self.hd, self.kv_heads * self.hd
        return {
            "q_proj": (self.hidden, q),
            "k_proj": (self.hidden, kv),
            "v_proj": (self.hidden, kv),
            "o_proj": (q, self.hidden),
            "gate_proj": (self.hidden, self.intermediate),
            "up_proj": (self.hidden, self.intermediate),
            "down_proj": (self.intermediate, self.hidden),
        }

    def layer_params(self) -> int:
        n = sum(i * o for i, o in self.matrices().values()) + 2 * self.hidden  # + two RMSNorms
        if self.qkv_bias:
            n += self.heads * self.hd + 2 * self.kv_heads * self.hd
        return n

    def params(self) -> int:
        embed = self.vocab * self.hidden
        return embed * (1 if self.tied_embeddings else 2) + self.layers * self.layer_params() + self.hidden

    def lora_params(self, r: int, targets: list[str]) -> int:
        mats = self.matrices()
        unknown = [t for t in targets if t not in mats]
        if unknown:
            raise LimoError(f"peft.target_modules: unknown {unknown}; known: {sorted(mats)} or 'all-linear'")
        return self.layers * sum(r * (mats[t][0] + mats[t][1]) for t in targets)


# Shapes of the models our recipes name, so the plan works offline (values from each model's config.json).
KNOWN_SHAPES: dict[str, ModelShape] = {
    "Qwen/Qwen2.5-32B-Instruct": ModelShape(5120, 64, 27648, 40, 8, 152064, qkv_bias=True),
    "Qwen/Qwen2.5-7B-Instruct": ModelShape(3584, 28, 18944, 28, 4, 152064, qkv_bias=True),
    "Qwen/Qwen2.5-1.5B-Instruct": ModelShape(1536, 28, 8960, 12, 2, 151936, tied_embeddings=True, qkv_bias=True),
    "mistralai/Mistral-Small-24B-Instruct-2501": ModelShape(5120, 40, 32768, 32, 8, 131072, head_dim=128),
    "meta-llama/Llama-3.1-8B-Instruct": ModelShape(4096, 32, 14336, 32, 8, 128256),
}


def shape_from_config(config) -> ModelShape:
    """ModelShape from a transformers config object."""
    c = config.get_text_config() if hasattr(config, "get_text_config") else config
    return ModelShape(
        hidden=c.hidden_size,
        layers=c.num_hidden_layers,
        intermediate=c.intermediate_size,
        heads=c.num_attention_heads,
        kv_heads=getattr(c, "num_key_value_heads", None) or c.num_attention_heads,
        vocab=c.vocab_size,
        head_dim=getattr(c, "head_dim", None),
        tied_embeddings=bool(getattr(c, "tie_word_embeddings", False)),
        qkv_bias=bool(getattr(c, "attention_bias", False)) or c.model_type.startswith("qwen2"),
    )


def model_shape(model: str) -> ModelShape:
    """Shape of an alias / hub id / directory: the built-in table first, then the model's config.json."""
    from limo.engines.models import ALIASES

    hub = ALIASES[model].hub_id if model in ALIASES else model
    if hub in KNOWN_SHAPES:
        return KNOWN_SHAPES[hub]
    from transformers import AutoConfig

    from limo.engines.hf import local_model_dir

    try:
        return shape_from_config(AutoConfig.from_pretrained(local_model_dir(model)))
    except OSError as e:
        raise LimoError(f"model '{model}': cannot read its config for the memory plan ({e})") from e


@dataclass
class BatchPlan:
    global_batch: int
    per_device: int
    devices: int
    accumulation: int

    def as_text(self) -> str:
        return (
            f"{self.per_device} per device x {self.accumulation} accumulation x {self.devices} devices"
            f" = {self.global_batch}"
        )


def plan_batch(global_batch: int, per_device: int, devices: int) -> BatchPlan:
    """Gradient accumulation that keeps the recipe's global batch on `devices` devices; error when impossible."""
    if global_batch < 1 or per_device < 1 or devices < 1:
        raise LimoError(
            "batch sizes and device count must be >= 1 "
            f"(global {global_batch}, per device {per_device}, devices {devices})"
        )
    step = per_device * devices
    if global_batch % step:
        ok = [d for d in range(1, global_batch + 1) if global_batch % (per_device * d) == 0]
        raise LimoError(
            f"global batch {global_batch} is not a multiple of per-device batch {per_device} x {devices} devices; "
            f"change per_device_batch_size or use a device count in {ok}"
        )
    return BatchPlan(global_batch, per_device, devices, global_batch // step)


@dataclass
class MemoryPlan:
    model: str
    params: int
    trainable_params: int
    strategy: str
    gpus: int
    gpu_memory_gb: float
    seq_len: int
    micro_batch: int
    gradient_checkpointing: bool
    precision: str
    weights_gb: float
    gradients_gb: float
    optimizer_gb: float
    buffers_gb: float
    activations_gb: float
    activations_no_ckpt_gb: float
    activations_ckpt_gb: float
    lm_head_gb: float
    context_gb: float
    cpu_offload_gb: float
    total_gb: float
    usable_gb: float
    fits: bool
    suggestions: list[str]

    @property
    def states_and_activations_gb(self) -> float:
        """What a CPU measurement of one process can check: everything but the CUDA context and comm buffers."""
        return self.weights_gb + self.gradients_gb + self.optimizer_gb + self.activations_gb + self.lm_head_gb

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


TILE_TOKENS, TILE_VOCAB = 4096, 32768  # trl 1.16 kernels/chunked_logprob.py TOKEN_CHUNK_SIZE; utils.py chunk size


def model_state_bytes(
    params: float, strategy: str, gpus: int, precision: str = "bf16"
) -> tuple[float, float, float, float]:
    """(weights, gradients, optimizer states, CPU RAM) bytes per GPU for full fine-tuning with Adam."""
    p, n = float(params), gpus
    if precision == "fp32":  # fp32 weights, grads and Adam m, v (CPU training); sharded like the bf16 case
        full = {"ddp": (4 * p, 4 * p, 8 * p), "zero2": (4 * p, 4 * p / n, 8 * p / n)}
        w, g, o = full.get(strategy, (4 * p / n, 4 * p / n, 8 * p / n))
        return (0.0, 0.0, 0.0, 16 * p / n) if strategy == "zero3-offload" else (w, g, o, 0.0)
    if strategy == "ddp":  # sft.py keeps fp32 weights under DDP; autocast caches bf16 copies; DDP buckets = grads
        buckets = 4 * p if n > 1 else 0.0
        return 4 * p + 2 * p, 4 * p + buckets, 8 * p, 0.0
    if strategy == "zero2":
        return 2 * p, 2 * p / n, 12 * p / n, 0.0
    if strategy == "zero3":
        return 2 * p / n, 2 * p / n, 12 * p / n, 0.0
    if strategy == "fsdp":  # FSDP2: fp32 sharded params, grads, Adam; bf16 compute copies are per gathered layer
        return 4 * p / n, 4 * p / n, 8 * p / n, 0.0
    if strategy == "zero3-offload":
        return 0.0, 0.0, 0.0, 16 * p / n
    raise LimoError(f"model_state_bytes: full fine-tuning strategies only, not '{strategy}'")


def layer_activation_bytes_per_token(shape: ModelShape, dtype_bytes: int) -> float:
    """Bytes one decoder layer keeps for backward per token (no checkpointing); see the module docstring."""
    b, h = dtype_bytes, shape.hidden
    q_dim, kv_dim = shape.heads * shape.hd, shape.kv_heads * shape.hd
    norms = 2 * (4 + b) * h
    attention = b * (3 * q_dim + 2 * kv_dim) + 4 * shape.heads
    mlp = 4 * b * shape.intermediate
    return norms + attention + mlp


def activation_bytes(
    shape: ModelShape, seq: int, micro_batch: int, checkpointing: bool, dtype_bytes: int = 2
) -> float:
    """Activations kept across the decoder layers at `seq` tokens x `micro_batch` (the LM head is separate)."""
    tokens = seq * micro_batch
    layer = layer_activation_bytes_per_token(shape, dtype_bytes) * tokens
    final_norm = (4 + dtype_bytes) * shape.hidden * tokens
    if checkpointing:  # every layer's input + one layer recomputed and its gradients
        return shape.layers * dtype_bytes * shape.hidden * tokens + 2 * layer + final_norm
    return shape.layers * layer + final_norm


CPU_TILE_TEMPORARIES = 8  # trl 1.16 kernels/chunked_logprob.py `_backward_tile`: y, z, log_p, p, grad + 3 products


def lm_head_bytes(shape: ModelShape, tokens: int, dtype_bytes: int, gathered: bool, triton: bool = True) -> float:
    """Transient peak of TRL's fused LM head in backward: the projection tile, the fp32 gradients of the head weight
    and of the hidden states, per-token statistics, and the gathered head weight under ZeRO-3. Without Triton (CPU)
    the tile is folded by torch ops that keep several fp32 tile-sized temporaries alive at once."""
    rows, cols = min(tokens, TILE_TOKENS), min(shape.vocab, TILE_VOCAB)
    tile = rows * TILE_VOCAB * dtype_bytes
    if not triton:
        tile += CPU_TILE_TEMPORARIES * rows * cols * 4.0
    grads = 4.0 * shape.vocab * shape.hidden + 4.0 * tokens * shape.hidden
    stats = 6 * 4.0 * tokens
    return tile + grads + stats + (2.0 * shape.vocab * shape.hidden if gathered else 0.0)


def estimate(
    shape: ModelShape,
    strategy: str,
    gpus: int,
    seq_len: int,
    micro_batch: int = 1,
    gradient_checkpointing: bool = True,
    gpu_memory_gb: float = 80.0,
    lora_r: int = 16,
    lora_targets: list[str] | None = None,
    reserve_fraction: float = 0.1,
    model: str = "",
    suggest: bool = True,
    precision: str = "bf16",
    context_gb: float | None = None,
) -> MemoryPlan:
    """Per-GPU memory for one strategy; `suggestions` say what to change when it does not fit. precision fp32 is
    the CPU case (no CUDA context unless `context_gb` says otherwise)."""
    if strategy not in STRATEGIES:
        raise LimoError(f"unknown strategy '{strategy}'; known: {STRATEGIES}")
    if gpus < 1:
        raise LimoError("gpus must be >= 1")
    b = 4 if precision == "fp32" else 2
    context = (0.0 if precision == "fp32" else 2.0) if context_gb is None else context_gb
    p = shape.params()
    trainable = p
    buffers = 0.0
    if strategy not in ("lora", "qlora"):
        w, g, o, cpu = model_state_bytes(p, strategy, gpus, precision)
    else:  # lora / qlora: frozen base replicated, adapters trained with the full 16 B/param
        trainable = shape.lora_params(lora_r, lora_targets or LORA_TARGETS_ALL)
        base = 2.0 * p if strategy == "lora" else QLORA_BITS / 8 * p
        w, g, o, cpu = base + 2.0 * trainable, 2.0 * trainable, 12.0 * trainable, 0.0
    if strategy in ("zero2", "zero3", "zero3-offload"):
        buffers += 2.0 * shape.hidden**2 * (1.0 if strategy == "zero2" else 1.9)
    if strategy in ("zero3", "fsdp", "zero3-offload"):
        buffers += 2 * 2.0 * shape.layer_params()  # gathered full layer (+ one prefetched) while it computes
    tokens = seq_len * micro_batch
    act_ckpt = activation_bytes(shape, seq_len, micro_batch, True, b)
    act_full = activation_bytes(shape, seq_len, micro_batch, False, b)
    act = act_ckpt if gradient_checkpointing else act_full
    gathered = strategy in ("zero3", "zero3-offload", "fsdp")
    head = lm_head_bytes(shape, tokens, b, gathered, triton=precision != "fp32")
    total = w + g + o + buffers + act + head + context * GB
    usable = gpu_memory_gb * (1 - reserve_fraction)
    plan = MemoryPlan(
        model=model,
        params=p,
        trainable_params=trainable,
        strategy=strategy,
        gpus=gpus,
        gpu_memory_gb=gpu_memory_gb,
        seq_len=seq_len,
        micro_batch=micro_batch,
        gradient_checkpointing=gradient_checkpointing,
        precision=precision,
        weights_gb=w / GB,
        gradients_gb=g / GB,
        optimizer_gb=o / GB,
        buffers_gb=buffers / GB,
        activations_gb=act / GB,
        activations_no_ckpt_gb=act_full / GB,
        activations_ckpt_gb=act_ckpt / GB,
        lm_head_gb=head / GB,
        context_gb=context,
        cpu_offload_gb=cpu / GB,
        total_gb=total / GB,
        usable_gb=usable,
        fits=total / GB <= usable,
        suggestions=[],
    )
    if not plan.fits and suggest:
        plan.suggestions = _suggest(shape, plan, lora_r, lora_targets, reserve_fraction)
    return plan


def _suggest(shape: ModelShape, plan: MemoryPlan, lora_r: int, lora_targets, reserve: float) -> list[str]:
    out = []
    kw = dict(
        gpu_memory_gb=plan.gpu_memory_gb,
        lora_r=lora_r,
        lora_targets=lora_targets,
        reserve_fraction=reserve,
        precision=plan.precision,
        context_gb=plan.context_gb,
    )

    def fits(strategy: str, seq: int, ckpt: bool = True) -> MemoryPlan:
        return estimate(shape, strategy, plan.gpus, seq, plan.micro_batch, ckpt, suggest=False, **kw)

    if not plan.gradient_checkpointing and fits(plan.strategy, plan.seq_len).fits:
        out.append("enable gradient_checkpointing")
    if plan.micro_batch > 1:
        out.append("lower per_device_batch_size (raise accumulation; the global batch stays)")
    order = ["ddp", "zero2", "zero3", "zero3-offload", "lora", "qlora"]
    start = order.index("zero3" if plan.strategy == "fsdp" else plan.strategy)
    for alt in order[start + 1 :]:
        p = fits(alt, plan.seq_len)
        if p.fits:
            out.append(f"strategy {alt}: {p.total_gb:.1f} GB per GPU")
            break
    seq = plan.seq_len
    while seq > 256 and not fits(plan.strategy, seq).fits:
        seq //= 2
    if seq != plan.seq_len and fits(plan.strategy, seq).fits:
        out.append(f"a shorter cutoff: {seq} tokens fits with {plan.strategy}")
    if not out:
        out.append("more or larger GPUs: nothing tried fits this GPU count")
    return out


def print_and_save(plan: MemoryPlan, batch: BatchPlan | None, out_dir: Path | None) -> None:
    from rich.table import Table

    from limo.console import console

    table = Table(
        title=f"memory plan per GPU: {plan.model} ({plan.params / 1e9:.2f}B params), "
        f"{plan.strategy} on {plan.gpus} GPU(s)"
    )
    table.add_column("item")
    table.add_column("GB", justify="right")
    ckpt = "checkpointing" if plan.gradient_checkpointing else "no checkpointing"
    rows = [
        ("weights", plan.weights_gb),
        ("gradients", plan.gradients_gb),
        ("optimizer states", plan.optimizer_gb),
        ("communication buffers, gathered layers", plan.buffers_gb),
        (
            f"activations @ {plan.seq_len} tok x {plan.micro_batch} ({ckpt})",
            plan.activations_gb,
        ),
        ("  (with checkpointing)", plan.activations_ckpt_gb),
        ("  (without checkpointing)", plan.activations_no_ckpt_gb),
        ("fused LM head (transient, backward)", plan.lm_head_gb),
        ("CUDA/NCCL context", plan.context_gb),
        ("CPU RAM (offloaded, per GPU)", plan.cpu_offload_gb),
        ("total per GPU", plan.total_gb),
        (f"usable of {plan.gpu_memory_gb:g} GB", plan.usable_gb),
    ]
    for name, value in rows:
        table.add_row(name, f"{value:.2f}")
    console.print(table)
    console.print("[green]fits[/green]" if plan.fits else "[red]does not fit[/red]: " + "; ".join(plan.suggestions))
    if plan.trainable_params != plan.params:
        console.print(f"trainable parameters: {plan.trainable_params / 1e6:.1f}M")
    if batch is not None:
        console.print(f"global batch: {batch.as_text()}")
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        data = {"memory": plan.to_dict(), "batch": dataclasses.asdict(batch) if batch else None}
        (out_dir / "memory_plan.json").write_text(json.dumps(data, indent=2))
