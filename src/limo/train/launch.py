"""What this training process was actually launched as, checked against the recipe before anything loads.

- `detect_launch()`: the strategy this process will really train with, read from the recipe's `deepspeed:` JSON or
  the environment `accelerate launch` sets (ACCELERATE_USE_DEEPSPEED + ACCELERATE_DEEPSPEED_CONFIG_FILE, or
  ACCELERATE_USE_FSDP), else plain data parallel (one or several processes).
- `check_strategy()`: the recipe's `strategy` (which the memory plan uses) must be what the launch trains; a
  mismatch is one line naming both and the launch that would match.
- `check_deepspeed_batch()`: explicit batch numbers in a DeepSpeed JSON must agree with the recipe's
  micro x accumulation x devices = global batch ("auto" takes the recipe's).
- `resolve_attention()`: `attn_implementation: auto` is flash_attention_2 when flash-attn imports and a GPU is
  there, else sdpa; the choice and its reason are printed by the caller.

    from limo.train.launch import detect_launch, check_strategy
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from limo.errors import LimoError

ACCELERATE_CONFIGS = {
    "zero3": "accelerate launch --config_file recipes/accelerate/zero3.yaml",
    "zero3-offload": "accelerate launch --config_file recipes/accelerate/zero3-offload.yaml",
    "fsdp": "accelerate launch --config_file recipes/accelerate/fsdp.yaml",
    "zero2": "a DeepSpeed JSON with zero_optimization.stage 2 (recipe key `deepspeed:`)",
    "ddp": "torchrun or plain `limo train` (no DeepSpeed/FSDP config)",
}


@dataclass
class Launch:
    strategy: str  # ddp | zero2 | zero3 | zero3-offload | fsdp
    world: int
    via: str
    deepspeed_config: dict[str, Any] | None = None
    deepspeed_file: str | None = None


def read_deepspeed_json(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise LimoError(f"deepspeed: config file {path} not found")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise LimoError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(data, dict):
        raise LimoError(f"{path}: expected a JSON object")
    return data


def deepspeed_strategy(config: dict[str, Any]) -> str:
    """ddp | zero2 | zero3 | zero3-offload from a DeepSpeed config's zero_optimization block."""
    zero = config.get("zero_optimization") or {}
    stage = int(zero.get("stage", 0))
    devices = [(zero.get(key) or {}).get("device", "none") for key in ("offload_param", "offload_optimizer")]
    offload = any(d not in ("none", None) for d in devices)
    if stage == 3:
        return "zero3-offload" if offload else "zero3"
    return "zero2" if stage in (1, 2) else "ddp"


def detect_launch(recipe_deepspeed: str | None, env: dict[str, str] | None = None) -> Launch:
    env = dict(os.environ) if env is None else env
    world = int(env.get("WORLD_SIZE", "1"))
    if recipe_deepspeed:
        config = read_deepspeed_json(recipe_deepspeed)
        via = f"recipe deepspeed: {recipe_deepspeed}"
        return Launch(deepspeed_strategy(config), world, via, config, recipe_deepspeed)
    if env.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        file = env.get("ACCELERATE_DEEPSPEED_CONFIG_FILE")
        if file and file.lower() != "none":
            config = read_deepspeed_json(file)
            return Launch(deepspeed_strategy(config), world, f"accelerate DeepSpeed config {file}", config, file)
        stage = int(env.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2"))
        offload = any(
            env.get(k, "none").lower() not in ("none", "")
            for k in ("ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE", "ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE")
        )
        zero = {"stage": stage, **({"offload_param": {"device": "cpu"}} if offload else {})}
        return Launch(deepspeed_strategy({"zero_optimization": zero}), world, "accelerate DeepSpeed (no JSON)")
    if env.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
        return Launch("fsdp", world, "accelerate FSDP config", None)
    how = f"{world} data-parallel processes" if world > 1 else "one process, no DeepSpeed/FSDP"
    return Launch("ddp", world, how, None)


def check_strategy(recipe_strategy: str, launch: Launch) -> None:
    """The recipe's strategy must be what this launch trains (the memory plan is computed for the recipe's)."""
    if recipe_strategy == launch.strategy:
        return
    raise LimoError(
        f"strategy mismatch: the recipe says strategy {recipe_strategy} but this launch trains {launch.strategy} "
        f"({launch.via}); launch with {ACCELERATE_CONFIGS.get(recipe_strategy, recipe_strategy)} "
        f"or set --set strategy={launch.strategy}"
    )


def check_deepspeed_batch(launch: Launch, global_batch: int, per_device: int, accumulation: int) -> None:
    """Numbers (not "auto") in the DeepSpeed JSON must be the recipe's; DeepSpeed itself asserts
    train_batch_size == micro x accumulation x world."""
    if launch.deepspeed_config is None:
        return
    want = {
        "train_batch_size": global_batch,
        "train_micro_batch_size_per_gpu": per_device,
        "gradient_accumulation_steps": accumulation,
    }
    for key, value in want.items():
        got = launch.deepspeed_config.get(key, "auto")
        if got != "auto" and int(got) != value:
            raise LimoError(
                f"{launch.deepspeed_file}: {key} is {got} but the recipe needs {value} "
                f"({per_device} per device x {accumulation} accumulation x {launch.world} devices = {global_batch}); "
                'set it to "auto"'
            )


def flash_attention_status() -> tuple[bool, str]:
    """(usable, why) for flash-attn: it must import and a CUDA GPU must be present."""
    try:
        import flash_attn
    except Exception as e:  # ImportError, or an OSError/RuntimeError from a wheel built for another CUDA/torch
        return False, f"flash_attn does not import ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    import torch

    if not torch.cuda.is_available():
        return False, f"flash_attn {flash_attn.__version__} imports but no CUDA GPU is visible"
    return True, f"flash_attn {flash_attn.__version__} imports"


def resolve_attention(requested: str | None) -> tuple[str, str]:
    """(attn_implementation to load the model with, the reason)."""
    if requested in (None, "auto"):
        usable, why = flash_attention_status()
        return ("flash_attention_2", f"auto: {why}") if usable else ("sdpa", f"auto: {why}, so sdpa")
    if requested == "flash_attention_2":
        usable, why = flash_attention_status()
        if not usable:
            raise LimoError(f"attn_implementation flash_attention_2: {why}; use attn_implementation: auto or sdpa")
    return requested, "set in the recipe"
