"""Memory plan and global-batch bookkeeping, printed and saved (DIR/memory_plan.json) before training starts.

Per GPU, in GB (1 GB = 1e9 bytes), for a strategy and a GPU count:
  weights, gradients, optimizer states  mixed-precision accounting of the ZeRO paper (Rajbhandari et al. 2020, §3.1):
                                        bf16 weights 2 B/param, bf16 grads 2 B/param, fp32 master + Adam m + v
                                        12 B/param = 16 B/param in all; ZeRO-2 shards grads+optimizer over GPUs,
                                        ZeRO-3/FSDP also the weights, ZeRO-3-offload keeps all three in CPU RAM.
  lora / qlora                          frozen base in bf16 (2 B) or NF4 with double quantisation (4.127 bits, QLoRA
                                        paper §2); only the adapters (r * (in + out) per target matrix) train (16 B).
  activations at the cutoff             per layer ~34*s*b*h bytes with flash attention (Korthikanti et al. 2022, §4.1);
                                        with gradient checkpointing only each layer's input (2*s*b*h) is kept plus one
                                        layer being recomputed; the fp32 logits and their gradient add 8*s*b*V.
It is an estimate (no CUDA context, fragmentation or communication buckets); `reserve_fraction` leaves room for them.

    limo train recipes/limo-qwen2.5-32b.yaml --plan-only --set gpus=8
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
    weights_gb: float
    gradients_gb: float
    optimizer_gb: float
    activations_gb: float
    activations_no_ckpt_gb: float
    activations_ckpt_gb: float
    cpu_offload_gb: float
    total_gb: float
    usable_gb: float
    fits: bool
    suggestions: list[str]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def model_state_bytes(params: float, strategy: str, gpus: int) -> tuple[float, float, float, float]:
    """(weights, gradients, optimizer states, CPU RAM) bytes per GPU for full fine-tuning with mixed-precision Adam."""
    p, n = float(params), gpus
    if strategy == "ddp":
        return 2 * p, 2 * p, 12 * p, 0.0
    if strategy == "zero2":
        return 2 * p, 2 * p / n, 12 * p / n, 0.0
    if strategy in ("zero3", "fsdp"):
        return 2 * p / n, 2 * p / n, 12 * p / n, 0.0
    if strategy == "zero3-offload":
        return 0.0, 0.0, 0.0, 16 * p / n
    raise LimoError(f"model_state_bytes: full fine-tuning strategies only, not '{strategy}'")


def activation_bytes(shape: ModelShape, seq: int, micro_batch: int, checkpointing: bool) -> float:
    sbh = seq * micro_batch * shape.hidden
    logits = 8.0 * seq * micro_batch * shape.vocab
    if checkpointing:
        return shape.layers * 2.0 * sbh + 34.0 * sbh + logits
    return shape.layers * 34.0 * sbh + logits


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
) -> MemoryPlan:
    """Per-GPU memory for one strategy; `suggestions` say what to change when it does not fit."""
    if strategy not in STRATEGIES:
        raise LimoError(f"unknown strategy '{strategy}'; known: {STRATEGIES}")
    if gpus < 1:
        raise LimoError("gpus must be >= 1")
    p = shape.params()
    n = gpus
    trainable = p
    if strategy not in ("lora", "qlora"):
        w, g, o, cpu = model_state_bytes(p, strategy, n)
    else:  # lora / qlora: frozen base replicated, adapters trained with the full 16 B/param
        trainable = shape.lora_params(lora_r, lora_targets or LORA_TARGETS_ALL)
        base = 2.0 * p if strategy == "lora" else QLORA_BITS / 8 * p
        w, g, o, cpu = base + 2.0 * trainable, 2.0 * trainable, 12.0 * trainable, 0.0
    if strategy in ("zero3", "fsdp", "zero3-offload"):
        w += 2 * 2.0 * shape.layer_params()  # gathered full layer (+ one prefetched) while it computes
    act_ckpt = activation_bytes(shape, seq_len, micro_batch, True)
    act_full = activation_bytes(shape, seq_len, micro_batch, False)
    act = act_ckpt if gradient_checkpointing else act_full
    total = w + g + o + act
    usable = gpu_memory_gb * (1 - reserve_fraction)
    fits = total / GB <= usable
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
        weights_gb=w / GB,
        gradients_gb=g / GB,
        optimizer_gb=o / GB,
        activations_gb=act / GB,
        activations_no_ckpt_gb=act_full / GB,
        activations_ckpt_gb=act_ckpt / GB,
        cpu_offload_gb=cpu / GB,
        total_gb=total / GB,
        usable_gb=usable,
        fits=fits,
        suggestions=[],
    )
    if not fits and suggest:
        plan.suggestions = _suggest(shape, plan, lora_r, lora_targets, reserve_fraction)
    return plan


def _suggest(shape: ModelShape, plan: MemoryPlan, lora_r: int, lora_targets, reserve: float) -> list[str]:
    out = []
    kw = dict(gpu_memory_gb=plan.gpu_memory_gb, lora_r=lora_r, lora_targets=lora_targets, reserve_fraction=reserve)

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
        (
            f"activations @ {plan.seq_len} tok x {plan.micro_batch} ({ckpt})",
            plan.activations_gb,
        ),
        ("  (with checkpointing)", plan.activations_ckpt_gb),
        ("  (without checkpointing)", plan.activations_no_ckpt_gb),
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
