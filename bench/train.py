"""Training throughput: padding-free and packed batching against padded batching, same model, data and optimizer.

The data has a long-tailed (lognormal) length distribution like long-CoT traces. Each mode trains one epoch over the
same samples with TRL's own batching code (DataCollatorForLanguageModeling, padded or padding-free, and
`pack_dataset` BFD packing) and AdamW; throughput counts real (non-pad) tokens per second of wall time.
The model is a randomly initialised small Llama (SmolLM2's layout, shrunk so a 2-core CPU finishes in minutes).

    python bench/train.py                  # prints a table, writes bench/results/train.json
    python bench/train.py --samples 96 --hidden 256 --layers 4
"""

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch


def make_lengths(n: int, median: float, sigma: float, lo: int, hi: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    return [int(x) for x in np.clip(rng.lognormal(np.log(median), sigma, n), lo, hi)]


def make_model(vocab: int, hidden: int, layers: int, seed: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=hidden * 8 // 3,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 64),
        num_key_value_heads=max(1, hidden // 192),
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        use_cache=False,
    )
    return LlamaForCausalLM(cfg)


def batches(mode: str, samples: list[list[int]], batch_size: int, pack_len: int):
    from datasets import Dataset
    from trl.data_utils import pack_dataset
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    if mode == "packed":
        ds = Dataset.from_dict({"input_ids": samples, "labels": samples})
        packed = pack_dataset(ds, pack_len, "bfd", {})
        rows = [packed[i] for i in range(len(packed))]
        collate = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)
        per_step = max(1, batch_size * int(np.mean([len(s) for s in samples])) // pack_len)
        return [collate(rows[i : i + per_step]) for i in range(0, len(rows), per_step)]
    collate = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=mode == "padding_free")
    rows = [{"input_ids": s, "labels": s} for s in samples]
    return [collate(rows[i : i + batch_size]) for i in range(0, len(rows), batch_size)]


def run_mode(mode: str, samples, args) -> dict:
    model = make_model(args.vocab, args.hidden, args.layers, args.seed)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    data = batches(mode, samples, args.batch_size, args.pack_len)
    real = sum(len(s) for s in samples)
    slots = sum(int(b["input_ids"].numel()) for b in data)
    # warm-up step (allocator, kernels) not timed
    model(**data[0]).loss.backward()
    opt.zero_grad(set_to_none=True)
    start = time.perf_counter()
    for batch in data:
        loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    seconds = time.perf_counter() - start
    return {
        "mode": mode,
        "steps": len(data),
        "real_tokens": real,
        "token_slots": slots,
        "pad_fraction": 1 - real / slots,
        "seconds": seconds,
        "tokens_per_s": real / seconds,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--median", type=float, default=160)
    ap.add_argument("--sigma", type=float, default=0.9)
    ap.add_argument("--max-len", type=int, default=1024)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--pack-len", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--hidden", type=int, default=192)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("bench/results/train.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    lengths = make_lengths(args.samples, args.median, args.sigma, 16, args.max_len, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    samples = [rng.integers(1, args.vocab, n).tolist() for n in lengths]
    results = [run_mode(m, samples, args) for m in ("padded", "padding_free", "packed")]
    base = results[0]["tokens_per_s"]
    for r in results:
        r["speedup_vs_padded"] = r["tokens_per_s"] / base

    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"SFT throughput, {args.samples} samples, lognormal lengths (median {args.median:g}, sigma {args.sigma})"
    )
    for col in ("mode", "steps", "real tokens", "pad %", "seconds", "tokens/s", "x padded"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(
            r["mode"],
            str(r["steps"]),
            str(r["real_tokens"]),
            f"{100 * r['pad_fraction']:.0f}",
            f"{r['seconds']:.1f}",
            f"{r['tokens_per_s']:.0f}",
            f"{r['speedup_vs_padded']:.2f}",
        )
    Console().print(table)
    out = {
        "bench": "train",
        "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} torch threads (2-core CPU dev box, no GPU)",
        "model": f"random Llama, vocab {args.vocab}, hidden {args.hidden}, {args.layers} layers",
        "lengths": {
            "min": min(lengths),
            "median": float(np.median(lengths)),
            "mean": float(np.mean(lengths)),
            "max": max(lengths),
        },
        "args": {k: str(v) for k, v in vars(args).items()},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
