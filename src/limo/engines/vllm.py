"""The `vllm` engine: offline vLLM on GPU machines (`pip install -e '.[vllm]'`), written against vllm 0.32.0 (the
version `pip install -e '.[vllm]'` resolves with torch 2.13; see README "Installing the extras").

What it does, and where in vllm 0.32.0 each piece comes from (vllm/entrypoints/llm.py, vllm/v1/engine/...):

- **Prompts are token ids.** `prompt_token_ids` renders chat messages with the tokenizer's chat template (which
  writes its own BOS) and tokenises the text with `add_special_tokens=False`; a raw string prompt is tokenised with
  the tokenizer's special tokens. The engine receives `TokensPrompt(prompt_token_ids=...)`, so vllm never adds a
  second BOS (rendering to text and letting vllm tokenise it again gave Llama-3 and Mistral templates two).
- **No batch barrier.** All cache misses are submitted with `LLM.enqueue` (the public "add without running" call)
  in a window of `max_in_flight` requests; `LLM.llm_engine.step()` is driven here, and each step's finished requests
  are yielded at once, so `CachedEngine` commits every result to the cache as it finishes and a slow 32k-token
  sample holds back nothing but itself (`run_continuously`, tested on CPU with a scripted step engine).
- **Over-long prompts are dropped and counted.** vllm refuses a prompt of `max_model_len` tokens or more
  (`InputProcessor._validate_prompt_len`) by raising, which would fail the whole submission; such prompts come back
  as error completions with reason `prompt_too_long` (counted in the engine stats, never cached).
- **GGUF aliases are refused** with a clear error: vllm 0.32's loaders (`model_executor/model_loader`, `LoadFormats`)
  have no GGUF format. Use a hub id or a directory of safetensors.
- **`load_format: dummy`** is passed to `vllm.LLM` (random weights: a smoke test without a checkpoint).
- **Batch-invariant determinism** (`batch_invariant: true`) sets `VLLM_BATCH_INVARIANT=1` before vllm is imported:
  vllm then uses batch-invariant kernels, so a sample does not depend on which other requests share its batch (with
  our per-request seeds, a rerun reproduces it). vllm 0.32 enables it only for bf16, unquantised models on CUDA
  cards it has tuned kernels for (`VllmConfig`, config/vllm.py), and it costs throughput; it is off by default.

vllm is imported only when this backend is built, so the package works without it.

    limo generate --engine vllm --model Qwen/Qwen2.5-7B-Instruct --input p.jsonl --out o.jsonl --n 8 --temperature 0.7
"""

import importlib
import os
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from limo.engines.base import Completion, EngineConfig, Request, dropped, producer_info
from limo.engines.models import model_revision, resolve
from limo.errors import LimoError

MAX_IN_FLIGHT = 4096  # requests handed to vllm at once: enough to keep its scheduler full, bounded memory


def import_vllm(batch_invariant: bool = False):
    """The vllm module, or a LimoError that says how to get it."""
    if batch_invariant:
        os.environ["VLLM_BATCH_INVARIANT"] = "1"  # read by vllm.envs; must be set before the engine starts
    try:
        return importlib.import_module("vllm")
    except ImportError as e:
        raise LimoError(
            f"the vllm engine needs the 'vllm' package ({e}); install it on a GPU machine with "
            "pip install -e '.[vllm]', or use --engine hf / --engine openai"
        ) from e


def model_path(model: str) -> str:
    """A hub id or directory vllm can load; a GGUF model is refused with what to use instead."""
    r = resolve(model)
    if r.gguf_file:
        raise LimoError(
            f"model {model!r} is a GGUF file ({r.gguf_file}), which vllm 0.32 cannot load (it has no GGUF loader); "
            "pass a hub id or a directory with safetensors weights, or use --engine hf / --engine openai "
            "(llama.cpp server) for GGUF models"
        )
    return r.path


def in_ray_placement_group() -> bool:
    """True inside a Ray actor that captured a placement group (a tensor-parallel replica of the ray engine)."""
    try:
        import ray
    except ImportError:
        return False
    return ray.is_initialized() and ray.util.get_current_placement_group() is not None


def engine_kwargs(cfg: EngineConfig, in_placement_group: bool = False) -> dict[str, Any]:
    """The keyword arguments for `vllm.LLM` (see vllm/entrypoints/llm.py: LLM.__init__ and EngineArgs).

    A tensor-parallel replica of the ray engine runs in a placement group of one-GPU bundles: vllm's Ray executor
    places its workers there (the default "mp" executor would look for the GPUs in this process)."""
    kwargs: dict[str, Any] = {
        "model": model_path(cfg.model),
        "enable_prefix_caching": True,
        "tensor_parallel_size": cfg.tensor_parallel_size,
        "gpu_memory_utilization": cfg.gpu_memory_utilization,
        "dtype": cfg.dtype,
        "load_format": cfg.load_format,
    }
    if cfg.max_model_len:
        kwargs["max_model_len"] = cfg.max_model_len
    if cfg.tensor_parallel_size > 1 and in_placement_group:
        kwargs["distributed_executor_backend"] = "ray"
    return kwargs


def prompt_token_ids(tokenizer, prompt) -> list[int]:
    """Token ids for one prompt, with exactly the BOS its template or tokenizer defines (never two).

    Chat messages: the chat template's text (it writes its own BOS), tokenised without special tokens, as
    transformers' own `apply_chat_template(tokenize=True)` does. A string: the tokenizer's special tokens added.
    A string that already starts with the BOS text (a pre-rendered chat prompt) would get two: one is removed."""
    if isinstance(prompt, str):
        ids = list(tokenizer(prompt, add_special_tokens=True)["input_ids"])
    else:
        try:
            rendered = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        except ValueError as e:  # transformers: no chat template set
            raise LimoError(f"cannot render chat messages ({e}); pass string prompts instead") from e
        if isinstance(rendered, str):
            ids = list(tokenizer(rendered, add_special_tokens=False)["input_ids"])
        else:  # tokenizers that always return ids (vllm's Mistral tokenizer) write their own BOS
            ids = list(rendered)
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is not None and len(ids) >= 2 and ids[0] == bos and ids[1] == bos:
        ids = ids[1:]
    return ids


def completion_from_output(output) -> Completion:
    """A Completion from a finished `vllm.RequestOutput` (one sample: we always ask for n=1)."""
    o = output.outputs[0]
    reason = str(o.finish_reason)
    if reason in ("abort", "error"):  # FinishReason in vllm/v1/engine/__init__.py
        return dropped(f"vllm_{reason}", len(output.prompt_token_ids or []))
    return Completion(
        text=o.text,
        prompt_tokens=len(output.prompt_token_ids or []),
        completion_tokens=len(o.token_ids),
        finish_reason="stop" if reason == "stop" else "length",  # "repetition" = cut off by vllm's detector
    )


class StepEngine(Protocol):
    """What `run_continuously` drives: vllm's `LLM.enqueue` + `LLMEngine.step`, or a scripted engine in tests."""

    def submit(self, token_ids: list[list[int]], requests: list[Request]) -> list[str]: ...

    def step(self) -> list: ...  # outputs with .request_id and .finished

    def has_unfinished(self) -> bool: ...


def run_continuously(
    engine: StepEngine,
    requests: list[Request],
    token_ids: Callable[[Request], list[int]],
    max_model_len: int,
    to_completion: Callable[[Any], Completion] = completion_from_output,
    max_in_flight: int = MAX_IN_FLIGHT,
) -> Iterator[tuple[list[Request], list[Completion]]]:
    """Yield (requests, completions) as requests finish, step by step, with at most `max_in_flight` submitted and
    unfinished. Prompts of `max_model_len` tokens or more are yielded first as `prompt_too_long` drops."""
    waiting: deque[tuple[Request, list[int]]] = deque()
    too_long: list[tuple[Request, Completion]] = []
    for r in requests:
        ids = token_ids(r)
        if len(ids) >= max_model_len:  # vllm needs room for at least one new token
            too_long.append((r, dropped("prompt_too_long", len(ids))))
        else:
            waiting.append((r, ids))
    if too_long:
        yield [r for r, _ in too_long], [c for _, c in too_long]
    by_id: dict[str, Request] = {}
    while waiting or by_id:
        room = max_in_flight - len(by_id)
        if waiting and room > 0:
            batch = [waiting.popleft() for _ in range(min(room, len(waiting)))]
            ids = engine.submit([t for _, t in batch], [r for r, _ in batch])
            by_id.update(zip(ids, (r for r, _ in batch), strict=True))
        finished = [out for out in engine.step() if out.finished]
        if finished:
            yield [by_id.pop(out.request_id) for out in finished], [to_completion(out) for out in finished]
        elif not engine.has_unfinished() and by_id:
            raise LimoError(f"vllm engine: {len(by_id)} requests vanished without output (engine stopped?)")


class _VLLMSteps:
    """`StepEngine` over a `vllm.LLM`: `LLM.enqueue` renders and adds token prompts, `llm_engine.step()` runs."""

    def __init__(self, vllm, llm):
        self.vllm, self.llm = vllm, llm

    def submit(self, token_ids: list[list[int]], requests: list[Request]) -> list[str]:
        prompts = [self.vllm.TokensPrompt(prompt_token_ids=ids) for ids in token_ids]
        return self.llm.enqueue(prompts, [sampling_params(self.vllm, r) for r in requests], use_tqdm=False)

    def step(self) -> list:
        return self.llm.llm_engine.step()

    def has_unfinished(self) -> bool:
        return self.llm.llm_engine.has_unfinished_requests()


def sampling_params(vllm, r: Request):
    s = r.sampling
    return vllm.SamplingParams(
        n=1,
        temperature=s.temperature,
        top_p=s.top_p,
        top_k=s.top_k if s.top_k > 0 else -1,
        max_tokens=s.max_tokens,
        stop=list(s.stop) or None,
        seed=r.seed,
    )


class VLLMBackend:
    def __init__(self, cfg: EngineConfig):
        kwargs = engine_kwargs(cfg, in_ray_placement_group())  # a GGUF alias fails here, before vllm is imported
        vllm = import_vllm(cfg.batch_invariant)
        self.cfg = cfg
        self.vllm = vllm
        self.llm = vllm.LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.max_model_len = self.llm.llm_engine.model_config.max_model_len
        # only used by callers that run one batch at a time; CachedEngine uses generate_stream
        self.batch_size = max(cfg.batch_size, 256)
        libraries = ("vllm", "torch", "transformers")
        self.producer = producer_info("vllm", cfg.model, model_revision(cfg.model), libraries)
        self.producer.update(load_format=cfg.load_format, batch_invariant=cfg.batch_invariant)

    def generate_stream(self, requests: list[Request]) -> Iterator[tuple[list[Request], list[Completion]]]:
        steps = _VLLMSteps(self.vllm, self.llm)
        yield from run_continuously(
            steps, requests, lambda r: prompt_token_ids(self.tokenizer, r.prompt), self.max_model_len
        )

    def generate_batch(self, requests: list[Request]) -> list[Completion]:
        out: dict[int, Completion] = {}
        for batch, completions in self.generate_stream(requests):
            for r, c in zip(batch, completions, strict=True):
                out[id(r)] = c
        return [out[id(r)] for r in requests]

    def close(self) -> None:
        self.llm = None
