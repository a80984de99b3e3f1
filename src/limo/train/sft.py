"""`limo train RECIPE.yaml [--set key=value] --out DIR`: supervised fine-tuning on chat messages with TRL.

The loss covers assistant tokens only: rows are tokenised here through a chat template with `{% generation %}`
markers (train/templates.py) into `input_ids` + `labels` (-100 outside assistant turns), cut at the cutoff (counted),
then handed to TRL's SFTTrainer pre-tokenised. Batching is `padding_free` (default: a batch of N samples is one
flattened row with position_ids, no pad tokens; the global batch still counts samples), `packed` (TRL BFD packing
into rows of `cutoff` tokens; the global batch then counts packed rows) or `padded` (the baseline).
Before anything loads, the launch is checked against the recipe (launch.py: `strategy` must be what the launch
trains; micro x accumulation x devices = global batch, printed) and the memory plan is printed and saved
(DIR/memory_plan.json). The training arguments (and with them the HF DeepSpeed config) are built BEFORE the model
is loaded, so under ZeRO-3 `from_pretrained` partitions the weights as they load (zero.Init) instead of every rank
holding the whole model. `attn_implementation: auto` picks flash-attention when it imports, else sdpa (printed).
`loss_weighting: sample | token` (loss.py) chooses how samples of different lengths weigh in the loss.
Checkpoints go to DIR/checkpoints/ and a rerun resumes from the last one; the final model, tokenizer and chat
template are saved in DIR itself (LoRA adapters merged), so `limo eval --model DIR` loads it.

    limo train recipes/smollm2-135m-cpu.yaml --out runs/sft-demo
    accelerate launch --config_file recipes/accelerate/zero3.yaml -m limo.cli train recipes/limo-qwen2.5-32b.yaml \
        --out runs/limo-32b
"""

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from limo.errors import LimoError
from limo.records import LIMO_SYSTEM_PROMPT
from limo.train.memory import LORA_TARGETS_ALL, STRATEGIES, BatchPlan, plan_batch
from limo.train.templates import KNOWN


@dataclass
class PeftSpec:
    """LoRA / QLoRA through peft (`peft: {method: lora, r: 16, ...}` in a recipe)."""

    method: Literal["lora", "qlora"] = "lora"
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: list(LORA_TARGETS_ALL))
    merge: bool = True  # merge the adapter into the base weights when saving DIR (so `limo eval` loads it as is)

    def __post_init__(self):
        if self.r < 1 or self.alpha < 1:
            raise ValueError("peft.r and peft.alpha must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("peft.dropout must be in [0, 1)")


@dataclass
class TrainConfig:
    model: str = "smollm2-135m"  # alias, hub id or directory
    data: str | None = None  # JSONL/Parquet (messages or question/solution), save_to_disk dir, run dir or hub id
    data_fields: dict[str, str] | None = None  # {question: COL, solution: COL}; default GAIR/LIMO's names
    system_prompt: str | None = LIMO_SYSTEM_PROMPT  # for question/solution rows (LIMO's, records.py)
    chat_template: str = "model"  # chatml | qwen | mistral | llama3 | model (the tokenizer's own)
    cutoff: int = 16384  # LIMO §4 / released config: cutoff 16384 tokens
    overlength: Literal["truncate", "drop"] = "truncate"  # rows longer than the cutoff (counted either way)
    invalid_rows: Literal["error", "drop"] = "error"  # rows without an assistant turn
    batching: Literal["padding_free", "packed", "padded"] = "padding_free"
    learning_rate: float = 5e-6  # LIMO §4 / released config: lr 5e-6
    epochs: float = 15.0  # LIMO §4 / released config: 15 epochs
    max_steps: int = -1  # > 0 overrides epochs
    lr_scheduler: str = "cosine"  # LIMO §4: cosine decay
    warmup_ratio: float = 0.0  # LIMO §4: no warmup
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    global_batch_size: int = 64  # LIMO §4: batch size 64
    per_device_batch_size: int = 1
    gradient_checkpointing: bool = True
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"  # auto: bf16 where the GPU supports it, else fp32
    attn_implementation: str = "auto"  # auto (flash_attention_2 if it imports, else sdpa) | flash_attention_2 | sdpa
    strategy: Literal["ddp", "zero2", "zero3", "zero3-offload", "fsdp"] = "ddp"  # must match the launch (checked)
    # sample: mean of per-sample mean token losses (LIMO's LLaMA-Factory run, see loss.py); token: all tokens equal
    loss_weighting: Literal["sample", "token"] = "sample"
    gpus: int | None = None  # devices for the memory plan (default: the processes launched)
    gpu_memory_gb: float = 80.0
    deepspeed: str | None = None  # DeepSpeed JSON when not launched through an accelerate config
    peft: PeftSpec | None = None
    seed: int = 42
    logging_steps: int = 1
    save_strategy: Literal["steps", "epoch", "no"] = "epoch"
    save_steps: int = 500
    save_total_limit: int = 1
    resume: bool = True  # continue from the last checkpoint in DIR/checkpoints
    optim: str = "adamw_torch"
    dataloader_num_workers: int = 0

    def __post_init__(self):
        for name in ("learning_rate", "epochs", "warmup_ratio", "weight_decay", "max_grad_norm", "gpu_memory_gb"):
            value = getattr(self, name)
            if isinstance(value, str):  # YAML 1.1 reads `1e-4` (no dot) as a string
                try:
                    setattr(self, name, float(value))
                except ValueError:
                    raise ValueError(f"{name}: expected a number, got {value!r}") from None
        if self.chat_template not in KNOWN:
            raise ValueError(f"unknown chat_template '{self.chat_template}'; known: {', '.join(KNOWN)}")
        for name in ("cutoff", "global_batch_size", "per_device_batch_size", "logging_steps", "save_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.learning_rate <= 0 or self.epochs <= 0:
            raise ValueError("learning_rate and epochs must be > 0")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError("warmup_ratio must be in [0, 1)")
        if self.gpus is not None and self.gpus < 1:
            raise ValueError("gpus must be >= 1")
        if self.loss_weighting not in ("sample", "token"):
            raise ValueError(f"loss_weighting: expected sample or token, got {self.loss_weighting!r}")
        if self.attn_implementation is None:
            self.attn_implementation = "auto"
        if self.data_fields is not None:
            unknown = sorted(set(self.data_fields) - {"question", "solution"})
            if unknown or not all(isinstance(v, str) for v in self.data_fields.values()):
                raise ValueError(f"data_fields: keys question/solution mapped to column names, got {self.data_fields}")

    @property
    def plan_strategy(self) -> str:
        return self.peft.method if self.peft else self.strategy


def build_train_config(data: dict[str, Any], where: str = "train") -> TrainConfig:
    """A recipe is either flat TrainConfig keys or has them under `train:` (as in `limo run` recipes)."""
    from limo.config import build

    if "train" in data and isinstance(data["train"], dict):
        data, where = data["train"], f"{where}.train"
    data = {k: v for k, v in data.items() if k not in ("name", "description")}
    if data.get("save_strategy") is False:  # YAML reads a bare `no` as false
        data["save_strategy"] = "no"
    return build(TrainConfig, data, where)


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def last_checkpoint(ckpt_dir: Path) -> Path | None:
    if not ckpt_dir.is_dir():
        return None
    found = [p for p in ckpt_dir.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return max(found, key=lambda p: int(p.name.split("-")[-1])) if found else None


def memory_plan(cfg: TrainConfig, out_dir: Path | None, devices: int | None = None) -> tuple[Any, BatchPlan]:
    """Print and save the memory plan and the batch bookkeeping for `cfg` (also `limo train --plan-only`)."""
    from limo.train.memory import estimate, model_shape, print_and_save

    plan_gpus = world_size() if world_size() > 1 else (cfg.gpus or 1)
    devices = devices or world_size()
    batch = plan_batch(cfg.global_batch_size, cfg.per_device_batch_size, devices)
    shape = model_shape(cfg.model)
    peft = cfg.peft or PeftSpec()
    plan = estimate(
        shape,
        cfg.plan_strategy,
        plan_gpus,
        cfg.cutoff,
        cfg.per_device_batch_size,
        cfg.gradient_checkpointing,
        cfg.gpu_memory_gb,
        lora_r=peft.r,
        lora_targets=peft.target_modules,
        model=cfg.model,
        precision="fp32" if cfg.precision == "fp32" or (cfg.precision == "auto" and not _cuda()) else "bf16",
    )
    assert plan.strategy in STRATEGIES
    if is_main_process():
        print_and_save(plan, batch, out_dir)
    return plan, batch


def _precision(cfg: TrainConfig) -> str:
    import torch

    if cfg.precision != "auto":
        if cfg.precision in ("bf16", "fp16") and not torch.cuda.is_available():
            raise LimoError(f"precision {cfg.precision} needs a GPU here; use precision: auto or fp32 on CPU")
        return cfg.precision
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _uses_deepspeed(cfg: TrainConfig) -> bool:
    return bool(cfg.deepspeed) or os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"


def load_model(cfg: TrainConfig, path: str, precision: str, attention: str):
    """The start model. bf16 weights only where an fp32 master copy lives elsewhere (DeepSpeed) or the base is frozen
    (LoRA); plain DDP/FSDP keep fp32 weights and autocast, so lr 5e-6 updates are not lost to bf16 rounding.
    Call it after `sft_args`: under ZeRO-3 the HF DeepSpeed config those arguments set makes this load partitioned."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"attn_implementation": attention}
    low = precision in ("bf16", "fp16") and (_uses_deepspeed(cfg) or cfg.peft is not None)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision) if low else torch.float32
    if cfg.peft and cfg.peft.method == "qlora":
        if not torch.cuda.is_available():
            raise LimoError("peft.method qlora needs a CUDA GPU and bitsandbytes (4-bit weights); use lora on CPU")
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as e:
            raise LimoError("peft.method qlora needs bitsandbytes: pip install bitsandbytes") from e
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",  # QLoRA §3: NF4 + double quantisation, bf16 compute
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        dtype = torch.bfloat16
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kwargs)
    # no KV cache in training: padding-free batches need it off for the block-diagonal mask (restored on save)
    model.config.use_cache = False
    return model


def sft_args(cfg: TrainConfig, out_dir: Path, batch: BatchPlan, precision: str):
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(out_dir / "checkpoints"),
        per_device_train_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=batch.accumulation,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a float < 1 is a ratio of the total steps
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        optim=cfg.optim,
        gradient_checkpointing=cfg.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if cfg.gradient_checkpointing else None,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        save_strategy=cfg.save_strategy,
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        seed=cfg.seed,
        report_to="none",
        deepspeed=cfg.deepspeed,
        dataloader_num_workers=cfg.dataloader_num_workers,
        # the dataset arrives tokenised, labels already masked (assistant-only); TRL only batches it
        assistant_only_loss=False,
        max_length=cfg.cutoff if cfg.batching != "padding_free" else None,
        packing=cfg.batching == "packed",
        packing_strategy="bfd",
        padding_free=cfg.batching == "padding_free",
        ddp_find_unused_parameters=False if world_size() > 1 else None,
        disable_tqdm=not is_main_process(),
        # without a GPU, accelerate only sets up multi-process (gloo) training when told it runs on CPU
        use_cpu=precision == "fp32" and not _cuda(),
    )


def _peft_config(spec: PeftSpec):
    from peft import LoraConfig

    return LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=spec.target_modules,
        task_type="CAUSAL_LM",
    )


def check_launch(cfg: TrainConfig, plan_only: bool = False):
    """The launch this process runs under, checked against the recipe (strategy, DeepSpeed batch numbers)."""
    from limo.train.launch import check_strategy, detect_launch

    launch = detect_launch(cfg.deepspeed)
    if not plan_only:
        check_strategy(cfg.strategy, launch)
    return launch


def args_then_model(cfg: TrainConfig, out_dir: Path, batch: BatchPlan, precision: str, model_path: str):
    """(training arguments, model, ZeRO-3 partitioned at load?) in THIS order: the arguments install the HF DeepSpeed
    config that `from_pretrained` reads to load under zero.Init, so each rank only materialises its shard."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    from limo.train.launch import resolve_attention

    attention, why = resolve_attention(cfg.attn_implementation)
    args = sft_args(cfg, out_dir, batch, precision)
    zero3_at_load = is_deepspeed_zero3_enabled()
    model = load_model(cfg, model_path, precision, attention)
    return args, model, {"attention": attention, "attention_reason": why, "zero3_partitioned_load": zero3_at_load}


def run_train(cfg: TrainConfig, out_dir: str | Path, plan_only: bool = False) -> Path:
    """Train as `cfg` says and return the directory holding the final model (out_dir)."""
    from limo.config import to_dict
    from limo.console import console, kv_table
    from limo.train.launch import check_deepspeed_batch

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if is_main_process():
        import yaml

        (out_dir / "train_config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    launch = check_launch(cfg, plan_only)
    _, batch = memory_plan(cfg, out_dir, devices=(cfg.gpus or world_size()) if plan_only else None)
    if plan_only:
        return out_dir
    check_deepspeed_batch(launch, batch.global_batch, batch.per_device, batch.accumulation)
    if is_main_process():
        console.print(f"launch: {launch.strategy} ({launch.via}); loss weighting: {cfg.loss_weighting}")
    if not cfg.data:
        raise LimoError("train.data is not set: give a JSONL/Parquet file, a save_to_disk dir or a curation run dir")

    from datasets import Dataset
    from transformers import AutoTokenizer

    from limo.engines.hf import local_model_dir
    from limo.train.data import load_rows, tokenize_rows
    from limo.train.loss import WeightedSFTTrainer
    from limo.train.outputs import StepTimer, loss_summary, save_final
    from limo.train.templates import apply_template

    model_path = local_model_dir(cfg.model)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    apply_template(tokenizer, cfg.chat_template)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    where, rows = load_rows(cfg.data, cfg.data_fields, cfg.system_prompt)
    cols, stats = tokenize_rows(tokenizer, where, rows, cfg.cutoff, cfg.overlength, cfg.invalid_rows)
    if is_main_process():
        (out_dir / "data_stats.json").write_text(json.dumps(stats.to_dict(), indent=2))
        console.print(kv_table(f"training data: {where}", stats.to_dict()))
    dataset = Dataset.from_dict(cols)

    precision = _precision(cfg)
    args, model, loaded = args_then_model(cfg, out_dir, batch, precision, model_path)
    if is_main_process():
        console.print(f"attention: {loaded['attention']} ({loaded['attention_reason']})")
        if loaded["zero3_partitioned_load"]:
            console.print("ZeRO-3: weights partitioned across ranks as they loaded (zero.Init)")
    timer = StepTimer()
    trainer = WeightedSFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=_peft_config(cfg.peft) if cfg.peft else None,
        loss_weighting=cfg.loss_weighting,
        callbacks=[timer.callback],
    )
    resume = last_checkpoint(out_dir / "checkpoints") if cfg.resume else None
    if resume is not None and is_main_process():
        console.print(f"resuming from {resume}")
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    seconds = time.perf_counter() - start
    save_final(trainer, cfg, tokenizer, out_dir, model_path)
    if trainer.is_world_process_zero():
        summary = {
            "model": cfg.model,
            "out_dir": str(out_dir),
            "steps": trainer.state.global_step,
            "epochs": trainer.state.epoch,
            "seconds": seconds,
            "step_seconds": timer.seconds,
            "train_loss": result.training_loss,
            "world_size": trainer.args.world_size,
            "batch": batch.__dict__,
            "batching": cfg.batching,
            "loss_weighting": cfg.loss_weighting,
            "strategy": launch.strategy,
            "precision": precision,
            **loaded,
            "resumed_from": str(resume) if resume else None,
            "data": stats.to_dict(),
            **loss_summary(trainer.state.log_history),
        }
        (out_dir / "train_summary.json").write_text(json.dumps(summary, indent=2))
        show = {k: summary[k] for k in ("steps", "seconds", "first_window_loss", "last_window_loss", "world_size")}
        console.print(kv_table(f"trained -> {out_dir}", show))
    return out_dir
