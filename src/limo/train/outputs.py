"""What `limo train` leaves behind: the final model (LoRA merged), the loss summary, per-step wall times.

from limo.train.outputs import StepTimer, save_final, loss_summary
"""

import time
from pathlib import Path
from typing import Any


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


class StepTimer:
    """Wall seconds of each optimizer step (GPU work synchronised), for train_summary.json and scripts/gpu_check.sh."""

    def __init__(self):
        from transformers import TrainerCallback

        self.seconds: list[float] = []
        self._start = 0.0
        timer = self

        class _Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                timer._sync()
                timer._start = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                timer._sync()
                timer.seconds.append(time.perf_counter() - timer._start)

        self.callback = _Callback()

    @staticmethod
    def _sync() -> None:
        if _cuda():
            import torch

            torch.cuda.synchronize()


def save_final(trainer, cfg, tokenizer, out_dir: Path, model_path: str) -> None:
    """Model + tokenizer + chat template into out_dir; a LoRA adapter is merged into bf16/fp32 base weights."""
    model = trainer.model
    model.config.use_cache = True
    if cfg.peft is None:
        trainer.save_model(str(out_dir))
    else:
        adapter_dir = out_dir / "adapter"
        trainer.save_model(str(adapter_dir))
        if cfg.peft.merge and trainer.is_world_process_zero():
            import torch
            from peft import PeftModel
            from transformers import AutoModelForCausalLM

            dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
            base = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
            merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
            merged.config.use_cache = True
            merged.save_pretrained(str(out_dir))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(out_dir))


def loss_summary(log_history: list[dict]) -> dict[str, Any]:
    losses = [(h["step"], h["loss"]) for h in log_history if "loss" in h]
    values = [v for _, v in losses]
    k = max(1, len(values) // 4)
    return {
        "losses": losses,
        "first_window_loss": sum(values[:k]) / k if values else None,
        "last_window_loss": sum(values[-k:]) / k if values else None,
        "window": k,
    }
