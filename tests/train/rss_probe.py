"""Measure the peak RSS of real training steps of a small Qwen2-shaped model on CPU (run as a subprocess by
test_train_memory.py): fp32 weights, TRL's fused LM head (as SFTTrainer calls it), torch AdamW, one optimizer step
of 2 accumulated micro-batches of one `seq`-token sample, twice (the second step has Adam's states).
The peak is VmHWM after resetting it (/proc/self/clear_refs 5) minus VmRSS just before the model is built, so
imports and the input tensors are not counted. Prints one JSON line.

    python tests/train/rss_probe.py --seq 1024 [--checkpointing]
"""

import argparse
import json
from pathlib import Path

CONFIG = dict(
    vocab_size=32000,
    hidden_size=256,
    intermediate_size=1376,  # 5.375 x hidden, Qwen2.5's MLP ratio (27648 / 5120 = 5.4)
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=4096,
    tie_word_embeddings=True,
    use_cache=False,
)


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--checkpointing", action="store_true")
    args = ap.parse_args()

    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    torch.set_num_threads(1)
    torch.manual_seed(0)
    ids = torch.randint(0, CONFIG["vocab_size"], (1, args.seq))
    labels = ids.clone()
    labels[0, : args.seq // 8] = -100  # a prompt without loss, as in SFT
    baseline = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    config = Qwen2Config(**CONFIG)
    config._attn_implementation = "sdpa"
    model = Qwen2ForCausalLM(config)
    if args.checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    for _ in range(2):
        for _ in range(2):  # gradient accumulation 2: gradients live through the second forward
            model(input_ids=ids, labels=labels, fused_lm_head=True).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    peak = _status("VmHWM") - baseline
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"peak_bytes": peak, "params": params, "seq": args.seq, "checkpointing": args.checkpointing}))


if __name__ == "__main__":
    main()
