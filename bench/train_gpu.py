"""GPU training throughput and MFU: a randomly initialised Qwen2.5-1.5B config at sequence lengths 4096..16384.

One GPU, bf16, AdamW, gradient checkpointing, flash-attention-2 when installed (else sdpa), batch of one packed
sequence per step (the LIMO setting: per-device batch 1, long traces). Reports tokens/s, step time, peak memory and
MFU = achieved model FLOPs / peak bf16 FLOPs, with model FLOPs per token = 6 * params + 12 * layers * hidden * seq
(the PaLM paper's accounting, appendix B; the attention term counts causal attention as full, as PaLM does).
No weights are downloaded: the config is Qwen2.5-1.5B's (hidden 1536, 28 layers, 12 heads / 2 KV heads,
intermediate 8960, vocab 151936, tied embeddings) built from scratch.

    python bench/train_gpu.py                          # writes bench/results/train_gpu.json
    python bench/train_gpu.py --seq 4096 8192 --steps 5 --peak-tflops 989   # H100 SXM dense bf16
"""

import argparse
import json
import time
from pathlib import Path

import torch

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}  # dense, no sparsity


def qwen25_1p5b(attn: str):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(
        vocab_size=151936,
        hidden_size=1536,
        intermediate_size=8960,
        num_hidden_layers=28,
        num_attention_heads=12,
        num_key_value_heads=2,
        max_position_embeddings=32768,
        tie_word_embeddings=True,
        use_cache=False,
    )
    cfg._attn_implementation = attn
    with torch.device("cuda"):
        model = Qwen2ForCausalLM(cfg).to(torch.bfloat16)
    return model


def peak_tflops(name: str, override: float | None) -> float | None:
    if override:
        return override
    for key, value in PEAK_BF16_TFLOPS.items():
        if key in name:
            return value
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seq", type=int, nargs="+", default=[4096, 8192, 16384])
    ap.add_argument("--steps", type=int, default=6, help="timed steps per length (after 2 warm-up steps)")
    ap.add_argument("--no-checkpointing", action="store_true")
    ap.add_argument("--peak-tflops", type=float, default=None, help="peak dense bf16 TFLOP/s of the card")
    ap.add_argument("--out", type=Path, default=Path("bench/results/train_gpu.json"))
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench/train_gpu.py needs a CUDA GPU")
    try:
        import flash_attn  # noqa: F401

        attn = "flash_attention_2"
    except ImportError:
        attn = "sdpa"
    name = torch.cuda.get_device_name()
    peak = peak_tflops(name, args.peak_tflops)
    model = qwen25_1p5b(attn)
    if not args.no_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    params = sum(p.numel() for p in model.parameters())
    cfg = model.config
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    rows = []
    for seq in args.seq:
        torch.cuda.reset_peak_memory_stats()
        ids = torch.randint(0, cfg.vocab_size, (1, seq), device="cuda")
        times = []
        try:
            for step in range(args.steps + 2):
                torch.cuda.synchronize()
                t = time.perf_counter()
                loss = model(input_ids=ids, labels=ids).loss
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                torch.cuda.synchronize()
                if step >= 2:
                    times.append(time.perf_counter() - t)
        except torch.cuda.OutOfMemoryError:
            rows.append({"seq": seq, "error": "out of memory"})
            torch.cuda.empty_cache()
            continue
        step_s = sum(times) / len(times)
        flops_per_token = 6 * params + 12 * cfg.num_hidden_layers * cfg.hidden_size * seq
        achieved = flops_per_token * seq / step_s / 1e12
        rows.append(
            {
                "seq": seq,
                "step_s": step_s,
                "tokens_per_s": seq / step_s,
                "model_tflops": achieved,
                "mfu": achieved / peak if peak else None,
                "peak_mem_gb": torch.cuda.max_memory_allocated() / 1e9,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    out = {
        "bench": "train_gpu",
        "device": name,
        "attn": attn,
        "params": params,
        "gradient_checkpointing": not args.no_checkpointing,
        "peak_bf16_tflops": peak,
        "torch": torch.__version__,
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"{'seq':>6} {'tokens/s':>10} {'TFLOP/s':>8} {'MFU':>6} {'mem GB':>7}")
    for r in rows:
        if "error" in r:
            print(f"{r['seq']:>6} {r['error']}")
        else:
            mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a"
            print(
                f"{r['seq']:>6} {r['tokens_per_s']:>10.0f} {r['model_tflops']:>8.1f} {mfu:>6} {r['peak_mem_gb']:>7.1f}"
            )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
