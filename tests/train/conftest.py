"""Fixtures for the training tests: the embedded model's tokenizer, a tiny random model of the same architecture
(fast CPU training for plumbing tests), and a small messages JSONL built from the real MATH pool's short solutions."""

import json

import pytest


@pytest.fixture(scope="session")
def smollm2_dir():
    from limo.engines.hf import local_model_dir

    return local_model_dir("smollm2-135m")


@pytest.fixture
def tokenizer(smollm2_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_dir)


@pytest.fixture(scope="session")
def tiny_model_dir(smollm2_dir, tmp_path_factory):
    """A randomly initialised 2-layer Llama with SmolLM2's tokenizer (seconds per step on CPU)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny-llama")
    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


def build_messages_jsonl(path, n: int, max_solution_chars: int = 260) -> int:
    """The first `n` MATH-train problems with short reference solutions, as LIMO-format chat messages."""
    from limo.paths import data_dir
    from limo.records import chat_messages

    rows = []
    with (data_dir() / "pools" / "math_train.jsonl").open(encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r.get("solution") and len(r["solution"]) < max_solution_chars and len(r["problem"]) < 200:
                rows.append({"id": r["id"], "messages": chat_messages(r["problem"], r["solution"])})
            if len(rows) >= n:
                break
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return len(rows)


@pytest.fixture(scope="session")
def math_messages(tmp_path_factory, shared_data):
    path = tmp_path_factory.mktemp("sft-data") / "messages.jsonl"
    assert build_messages_jsonl(path, 32) == 32
    return path


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op thread: on a shared 2-core box two spinning OpenMP threads per process made training steps ~4x
    slower (measured: 7 s vs 31 s for a SmolLM2 forward+backward on 120 tokens under load)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
