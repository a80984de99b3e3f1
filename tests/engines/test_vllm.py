"""The `vllm` engine's pure parts, on CPU: prompt token ids with exactly one BOS (real tokenizers: SmolLM2's from
its GGUF through transformers, and a Llama-3-style template from tests/data), the continuous step loop that commits
each result as it finishes (driven by a scripted step engine: vllm itself needs a GPU), over-long prompts dropped
and counted, GGUF aliases refused, `load_format` passed through, batch invariance switched on, and a lazy import.

    .venv/bin/pytest tests/engines/test_vllm.py
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from limo.engines.base import EngineConfig, SamplingParams, make_backend
from limo.engines.cache import CachedEngine, GenerationCache
from limo.engines.vllm import engine_kwargs, import_vllm, model_path, prompt_token_ids, run_continuously
from limo.errors import LimoError

VLLM_MISSING = importlib.util.find_spec("vllm") is None
TEMPLATES = Path(__file__).parents[1] / "data" / "templates"
CHAT = [{"role": "system", "content": "Reason step by step."}, {"role": "user", "content": "What is 2+2?"}]


def test_vllm_is_not_imported_with_the_package():
    code = "import sys, limo.engines, limo.engines.vllm, limo.cli; print('vllm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.skipif(not VLLM_MISSING, reason="vllm is installed here, so the missing-package error cannot occur")
def test_missing_vllm_gives_clear_error():
    with pytest.raises(LimoError, match=r"vllm engine needs the 'vllm' package.*pip install -e '\.\[vllm\]'"):
        make_backend(EngineConfig(model="Qwen/Qwen2.5-0.5B-Instruct", engine="vllm"))


def test_gguf_alias_is_refused_with_what_to_use_instead():
    with pytest.raises(LimoError, match=r"'smollm2-135m' is a GGUF file.*vllm 0\.32 cannot load.*--engine hf"):
        model_path("smollm2-135m")
    with pytest.raises(LimoError, match="GGUF"):
        make_backend(EngineConfig(model="smollm2-135m", engine="vllm"))  # before vllm is even imported
    assert model_path("Qwen/Qwen2.5-7B-Instruct") == "Qwen/Qwen2.5-7B-Instruct"


def test_engine_kwargs_pass_load_format_and_pick_the_ray_executor_in_a_placement_group():
    cfg = EngineConfig(model="Qwen/Qwen2.5-7B-Instruct", engine="vllm", load_format="dummy", max_model_len=4096)
    kwargs = engine_kwargs(cfg)
    assert kwargs["load_format"] == "dummy" and kwargs["max_model_len"] == 4096
    assert kwargs["enable_prefix_caching"] is True and "distributed_executor_backend" not in kwargs
    tp = EngineConfig(model="Qwen/Qwen2.5-32B-Instruct", engine="vllm", tensor_parallel_size=4)
    assert engine_kwargs(tp, in_placement_group=True)["distributed_executor_backend"] == "ray"
    assert "distributed_executor_backend" not in engine_kwargs(tp, in_placement_group=False)


def test_batch_invariance_sets_vllms_switch_before_import(monkeypatch):
    monkeypatch.delenv("VLLM_BATCH_INVARIANT", raising=False)
    if VLLM_MISSING:
        with pytest.raises(LimoError):
            import_vllm(batch_invariant=True)
    else:
        import_vllm(batch_invariant=True)
    assert os.environ["VLLM_BATCH_INVARIANT"] == "1"  # vllm.envs reads it (vllm/envs.py, VLLM_BATCH_INVARIANT)


# ----- prompt token ids with real tokenizers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2_tokenizer():
    """SmolLM2's tokenizer read from the embedded GGUF file by transformers (no conversion, no Hub)."""
    from transformers import AutoTokenizer

    from limo.engines.models import resolve

    r = resolve("smollm2-135m")
    return AutoTokenizer.from_pretrained(r.path, gguf_file=r.gguf_file)


@pytest.fixture(scope="module")
def llama3_style_tokenizer(smollm2_tokenizer):
    """SmolLM2's vocabulary made Llama-3-like: a `<|begin_of_text|>` BOS that the tokenizer adds to plain text (as
    Llama-3's does), header/eot special tokens, and the Llama-3-style template from tests/data (which also writes
    the BOS). Rendering to text and tokenising that with special tokens gives two BOS: the bug we guard against."""
    import copy

    from tokenizers.processors import TemplateProcessing

    tok = copy.deepcopy(smollm2_tokenizer)
    extra = ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    tok.add_special_tokens({"bos_token": "<|begin_of_text|>", "additional_special_tokens": extra})
    bos = tok.bos_token_id
    tok.backend_tokenizer.post_processor = TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A $B", special_tokens=[("<|begin_of_text|>", bos)]
    )
    tok.chat_template = (TEMPLATES / "llama3_style.jinja").read_text()
    return tok


def _reference_ids(tok, messages) -> list[int]:
    """What transformers itself tokenises for a chat (apply_chat_template with tokenize=True)."""
    enc = tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
    return list(enc["input_ids"] if hasattr(enc, "keys") else enc)


def test_llama3_style_chat_has_exactly_one_bos(llama3_style_tokenizer):
    tok = llama3_style_tokenizer
    bos = tok.bos_token_id
    text = tok.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    assert tok(text)["input_ids"][:2] == [bos, bos]  # the old path (text, then vllm tokenises): two BOS
    ids = prompt_token_ids(tok, CHAT)
    assert ids.count(bos) == 1 and ids[0] == bos
    assert ids == _reference_ids(tok, CHAT)
    # a raw string prompt gets the tokenizer's one BOS; a pre-rendered chat string does not get a second
    assert prompt_token_ids(tok, "The capital of France is").count(bos) == 1
    assert prompt_token_ids(tok, text).count(bos) == 1


def test_smollm2_chat_token_ids_match_transformers(smollm2_tokenizer):
    tok = smollm2_tokenizer
    ids = prompt_token_ids(tok, CHAT)
    assert ids == _reference_ids(tok, CHAT)
    # SmolLM2's BOS is <|im_start|>, which its ChatML template opens every turn with; the prompt starts with one
    assert ids[0] == tok.bos_token_id and ids[1] != tok.bos_token_id
    assert ids.count(tok.bos_token_id) == 3  # system turn, user turn, assistant header: one per turn, no extra
    assert prompt_token_ids(tok, "2+2=") == tok("2+2=", add_special_tokens=False)["input_ids"]  # adds none


# ----- the continuous step loop -------------------------------------------------------------------------------


class ScriptedSteps:
    """A step engine standing in for vllm's LLMEngine: request i finishes after `steps_for(prompt)` steps of its
    own, however many others run beside it. Records how many requests were in flight at most."""

    def __init__(self, steps_for, fail_at_step: int | None = None):
        self.steps_for = steps_for
        self.fail_at_step = fail_at_step
        self.step_no = 0
        self.running: dict[str, list] = {}  # id -> [steps left, token ids, request]
        self.next_id = 0
        self.max_in_flight = 0

    def submit(self, token_ids, requests):
        ids = []
        for t, r in zip(token_ids, requests, strict=True):
            rid = str(self.next_id)
            self.next_id += 1
            self.running[rid] = [self.steps_for(r.prompt), t, r]
            ids.append(rid)
        self.max_in_flight = max(self.max_in_flight, len(self.running))
        return ids

    def step(self):
        self.step_no += 1
        if self.step_no == self.fail_at_step:
            raise RuntimeError("engine died")
        done = []
        for rid, state in list(self.running.items()):
            state[0] -= 1
            if state[0] <= 0:
                del self.running[rid]
                out = SimpleNamespace(text=f"answer to {state[2].prompt}", token_ids=[7] * 3, finish_reason="stop")
                done.append(SimpleNamespace(request_id=rid, finished=True, outputs=[out], prompt_token_ids=state[1]))
        return done

    def has_unfinished(self):
        return bool(self.running)


class ScriptedVLLMBackend:
    """The VLLMBackend's generate_stream with the scripted step engine in place of vllm."""

    batch_size = 256

    def __init__(self, steps: ScriptedSteps, max_model_len: int = 64, max_in_flight: int = 4096):
        self.steps, self.max_model_len, self.max_in_flight = steps, max_model_len, max_in_flight
        self.producer = {"engine": "vllm", "model": "scripted"}

    def generate_stream(self, requests):
        tokens = lambda r: [1] + [5] * len(r.prompt.split())  # noqa: E731 - one id per word, after a BOS
        yield from run_continuously(self.steps, requests, tokens, self.max_model_len, max_in_flight=self.max_in_flight)

    def close(self):
        pass


def _engine(tmp_path, backend) -> tuple[CachedEngine, list]:
    engine = CachedEngine(EngineConfig(model="scripted", engine="vllm"), GenerationCache(tmp_path / "gen.sqlite"))
    engine._backend = backend
    commits = []  # (engine step at the commit, rows in the cache after it)
    put = engine.cache.put_many

    def recording_put(model, items):
        added = put(model, items)
        commits.append((backend.steps.step_no, engine.cache.count()))
        return added

    engine.cache.put_many = recording_put
    return engine, commits


# prompt i needs 1 + 7*i steps: the slowest (i = 7) needs 50, the fastest 1
PROMPTS = [f"question {i} " + "word " * i for i in range(8)]


def steps_for(prompt: str) -> int:
    return 1 + 7 * int(prompt.split()[1])


def test_each_result_is_committed_as_it_finishes_not_after_the_slowest(tmp_path):
    engine, commits = _engine(tmp_path, ScriptedVLLMBackend(ScriptedSteps(steps_for)))
    outs = engine.generate(PROMPTS, SamplingParams(max_tokens=16))
    assert [o[0].text for o in outs] == [f"answer to {p}" for p in PROMPTS]  # back in request order
    # one commit per finishing step, in finishing order: the fastest is in the cache at step 1 of 50
    assert commits == [(1 + 7 * i, i + 1) for i in range(8)]
    assert all(o[0].producer == {"engine": "vllm", "model": "scripted"} for o in outs)


def test_a_crash_mid_run_keeps_everything_that_finished_before_it(tmp_path):
    backend = ScriptedVLLMBackend(ScriptedSteps(steps_for, fail_at_step=20))
    engine, _ = _engine(tmp_path, backend)
    with pytest.raises(RuntimeError, match="engine died"):
        engine.generate(PROMPTS, SamplingParams(max_tokens=16))
    assert engine.cache.count() == 3  # prompts 0, 1, 2 finished at steps 1, 8, 15; a batch barrier would keep 0
    rerun, _ = _engine(tmp_path, ScriptedVLLMBackend(ScriptedSteps(steps_for)))
    rerun.generate(PROMPTS, SamplingParams(max_tokens=16))
    assert rerun.stats.cache_hits == 3 and rerun.stats.generated == 5


def test_submission_is_windowed(tmp_path):
    steps = ScriptedSteps(steps_for)
    engine, _ = _engine(tmp_path, ScriptedVLLMBackend(steps, max_in_flight=3))
    outs = engine.generate(PROMPTS, SamplingParams(max_tokens=16))
    assert steps.max_in_flight == 3 and all(o[0].finish_reason == "stop" for o in outs)


def test_over_long_prompts_are_dropped_and_counted_not_cached(tmp_path):
    # max_model_len 6: the BOS plus up to 4 words fit (prompt length < max_model_len), longer prompts are refused
    engine, _ = _engine(tmp_path, ScriptedVLLMBackend(ScriptedSteps(lambda p: 1), max_model_len=6))
    prompts = ["a b", "a b c d", "a b c d e", "a b c d e f g h"]
    outs = engine.generate(prompts, SamplingParams(max_tokens=16))
    assert [o[0].finish_reason for o in outs] == ["stop", "stop", "error", "error"]
    assert outs[2][0].error == "prompt_too_long" and outs[2][0].prompt_tokens == 6
    assert engine.stats.errors == {"prompt_too_long": 2} and engine.stats.generated == 2
    assert engine.cache.count() == 2  # a refused prompt is never cached: a longer context can still serve it


@pytest.mark.skipif(VLLM_MISSING, reason="vllm is not installed (GPU machines: pip install -e '.[vllm]')")
def test_real_vllm_generates_with_dummy_weights(tmp_path):
    """On a GPU machine with vllm: a tiny model with random weights (load_format dummy) runs the real step loop."""
    model = os.environ.get("LIMO_VLLM_TEST_MODEL", "Qwen/Qwen2.5-0.5B-Instruct")
    cfg = EngineConfig(model=model, engine="vllm", load_format="dummy", max_model_len=512)
    engine = CachedEngine(cfg, GenerationCache(tmp_path / "gen.sqlite"))
    outs = engine.generate([CHAT, "x " * 600], SamplingParams(max_tokens=8))
    assert outs[0][0].finish_reason in ("stop", "length") and outs[1][0].error == "prompt_too_long"
    assert engine.cache.count() == 1


def test_a_tokenizer_without_chat_template_is_a_clear_error(smollm2_tokenizer):
    import copy

    tok = copy.deepcopy(smollm2_tokenizer)
    tok.chat_template = None
    with pytest.raises(LimoError, match="cannot render chat messages.*pass string prompts"):
        prompt_token_ids(tok, CHAT)


def test_vllm_finish_reasons_map_to_ours():
    from limo.engines.vllm import completion_from_output

    def output(reason: str):
        sample = SimpleNamespace(text="42", token_ids=[1, 2], finish_reason=reason)
        return SimpleNamespace(outputs=[sample], prompt_token_ids=[5, 6, 7])

    assert completion_from_output(output("stop")).finish_reason == "stop"
    assert completion_from_output(output("length")).finish_reason == "length"
    assert completion_from_output(output("repetition")).finish_reason == "length"  # cut off by vllm's detector
    aborted = completion_from_output(output("abort"))
    assert (aborted.finish_reason, aborted.error, aborted.prompt_tokens) == ("error", "vllm_abort", 3)
    assert completion_from_output(output("error")).error == "vllm_error"
