"""Training FLOPs and MFU for decoder-only transformers, counting causal attention as causal.

Model FLOPs per trained token = 3 x forward (backward = 2 x forward; recomputation under gradient checkpointing is
not model FLOPs, as in the PaLM paper's MFU, appendix B). Forward per token = 2 x the parameters of every matmul
(q, k, v, o, gate, up, down in each layer, plus the LM head; the embedding lookup is free) + the attention scores:
QK^T and AV cost 2 x 2 x q_dim FLOPs per (query, key) pair, and a causal query at position t sees t + 1 keys, so a
sequence of s tokens averages (s + 1) / 2 keys per query (PaLM counts s, i.e. full attention; `causal=False` does).

    from limo.train.flops import train_flops_per_token, mfu
"""

from limo.train.memory import ModelShape


def matmul_params(shape: ModelShape) -> int:
    per_layer = sum(i * o for i, o in shape.matrices().values())
    return shape.layers * per_layer + shape.vocab * shape.hidden


def attention_flops_per_token(shape: ModelShape, seq: int, causal: bool = True) -> float:
    keys = (seq + 1) / 2 if causal else seq
    return shape.layers * 2 * 2 * shape.heads * shape.hd * keys


def train_flops_per_token(shape: ModelShape, seq: int, causal: bool = True) -> float:
    """Forward + backward model FLOPs per token of a sequence of `seq` tokens."""
    return 3 * (2 * matmul_params(shape) + attention_flops_per_token(shape, seq, causal))


def train_flops(shape: ModelShape, seq_lens: list[int], causal: bool = True) -> float:
    """Model FLOPs of one step over samples of these lengths (padding-free: each sample attends only to itself)."""
    return sum(n * train_flops_per_token(shape, n, causal) for n in seq_lens)


def mfu(flops: float, seconds: float, peak_flops_per_s: float) -> float:
    """Model FLOPs utilisation: achieved model FLOP/s over the peak FLOP/s of the device."""
    if seconds <= 0 or peak_flops_per_s <= 0:
        raise ValueError("seconds and peak FLOP/s must be > 0")
    return flops / seconds / peak_flops_per_s


def measure_matmul_peak(device: str = "cuda", dtype_name: str = "bfloat16", n: int = 8192, repeats: int = 10) -> float:
    """FLOP/s of the device on a square matmul (the 'measured peak' MFU is reported against)."""
    import time

    import torch

    dtype = getattr(torch, dtype_name)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(2):
        a @ b
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync()
    return 2 * n**3 * repeats / (time.perf_counter() - start)
