"""The `hf` engine with the real SmolLM2-135M on CPU: determinism, seeded sampling, stop strings, batch independence.

.venv/bin/pytest tests/engines/test_hf.py
"""

import pytest

from limo.engines.base import EngineConfig, SamplingParams
from limo.engines.cache import CachedEngine, GenerationCache

pytestmark = pytest.mark.slow

PROMPTS = [
    [{"role": "user", "content": "What is 7 times 8?"}],
    [{"role": "user", "content": "Name a prime number larger than 10 and explain why it is prime."}],
    "Once upon a time",
]


def fresh(backend, path) -> CachedEngine:
    """A cached engine with an empty cache over the session's model, so every call really generates."""
    engine = CachedEngine(EngineConfig(model="smollm2-135m", engine="hf", batch_size=8), GenerationCache(path))
    engine._backend = backend
    return engine


def texts(outs) -> list[list[str]]:
    return [[c.text for c in row] for row in outs]


def test_greedy_is_identical_across_runs(smollm2_backend, tmp_path):
    sampling = SamplingParams(max_tokens=24)
    first = fresh(smollm2_backend, tmp_path / "a.sqlite").generate(PROMPTS, sampling)
    second = fresh(smollm2_backend, tmp_path / "b.sqlite").generate(PROMPTS, sampling)
    assert texts(first) == texts(second)
    for (c,) in first:
        assert c.text.strip() and c.prompt_tokens > 0 and 0 < c.completion_tokens <= 24
        assert c.finish_reason in ("stop", "length") and not c.cached


def test_sampled_outputs_differ_and_seed_reproduces(smollm2_backend, tmp_path):
    sampling = SamplingParams(temperature=1.0, max_tokens=16, seed=3)
    (a,) = fresh(smollm2_backend, tmp_path / "a.sqlite").generate(PROMPTS[:1], sampling, n=4)
    assert len({c.text for c in a}) > 1, "n=4 samples should not all be the same"
    (b,) = fresh(smollm2_backend, tmp_path / "b.sqlite").generate(PROMPTS[:1], sampling, n=4)
    assert [c.text for c in a] == [c.text for c in b]
    other = SamplingParams(temperature=1.0, max_tokens=16, seed=4)
    (c,) = fresh(smollm2_backend, tmp_path / "c.sqlite").generate(PROMPTS[:1], other, n=4)
    assert [x.text for x in c] != [x.text for x in a]


def test_stop_strings_cut_the_text(smollm2_backend, tmp_path):
    plain = SamplingParams(max_tokens=32)
    ((full,),) = fresh(smollm2_backend, tmp_path / "a.sqlite").generate(PROMPTS[2:], plain)
    words = full.text.split()
    assert len(words) >= 4, full.text
    stop = words[3]  # a word the model is known to produce, greedy
    cut = SamplingParams(max_tokens=32, stop=(stop,))
    ((short,),) = fresh(smollm2_backend, tmp_path / "b.sqlite").generate(PROMPTS[2:], cut)
    assert stop not in short.text
    assert short.text == full.text[: full.text.find(stop)]
    assert short.finish_reason == "stop"
    assert short.completion_tokens < full.completion_tokens


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_sample_does_not_depend_on_its_batch(smollm2_backend, tmp_path, temperature):
    sampling = SamplingParams(temperature=temperature, max_tokens=16, seed=11)
    (alone,) = fresh(smollm2_backend, tmp_path / "a.sqlite").generate(PROMPTS[:1], sampling, n=2)
    together = fresh(smollm2_backend, tmp_path / "b.sqlite").generate(PROMPTS[1:] + PROMPTS[:1], sampling, n=2)
    assert [c.text for c in alone] == [c.text for c in together[-1]]


def test_sample_offset_continues_the_sample_sequence(smollm2_backend, tmp_path):
    sampling = SamplingParams(temperature=1.0, max_tokens=8, seed=5)
    engine = fresh(smollm2_backend, tmp_path / "a.sqlite")
    (all4,) = engine.generate(PROMPTS[:1], sampling, n=4)
    (last2,) = engine.generate(PROMPTS[:1], sampling, n=2, sample_offset=2)
    assert [c.text for c in last2] == [c.text for c in all4[2:]]
    assert all(c.cached for c in last2)
