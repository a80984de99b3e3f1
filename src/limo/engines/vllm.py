"""The `vllm` engine: offline `vllm.LLM` with prefix caching, for GPU machines (`pip install -e '.[vllm]'`).

vllm is imported only when this backend is built, so the package works without it; if it is missing the user gets
a LimoError saying how to install it. Chat prompts are rendered with the tokenizer's chat template. Each request is
one row with its own `vllm.SamplingParams(seed=request.seed)`: the n samples of a prompt are n rows, so every
sample has its own seed and its own cache key, and the cache stays independent of the engine (a sample made by
vllm and one made by `hf` share a key; prefix caching makes the shared prompt cheap).

    limo generate --engine vllm --model qwen2.5-7b-instruct --input p.jsonl --out o.jsonl --n 8 --temperature 0.7
"""

import importlib

from limo.engines.base import Completion, EngineConfig, Request
from limo.engines.models import resolve
from limo.errors import LimoError


def import_vllm():
    """The vllm module, or a LimoError that says how to get it."""
    try:
        return importlib.import_module("vllm")
    except ImportError as e:
        raise LimoError(
            f"the vllm engine needs the 'vllm' package ({e}); install it on a GPU machine with "
            "pip install -e '.[vllm]', or use --engine hf / --engine openai"
        ) from e


def model_path(model: str) -> str:
    """A path or hub id for vllm. A GGUF file is passed as a file path (vllm reads GGUF directly)."""
    r = resolve(model)
    return f"{r.path}/{r.gguf_file}" if r.gguf_file else r.path


class VLLMBackend:
    def __init__(self, cfg: EngineConfig):
        vllm = import_vllm()
        self.cfg = cfg
        self.vllm = vllm
        kwargs = {
            "model": model_path(cfg.model),
            "enable_prefix_caching": True,
            "tensor_parallel_size": cfg.tensor_parallel_size,
            "gpu_memory_utilization": cfg.gpu_memory_utilization,
            "dtype": cfg.dtype,
        }
        if cfg.max_model_len:
            kwargs["max_model_len"] = cfg.max_model_len
        self.llm = vllm.LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        # vllm schedules its own continuous batches; large batches here only mean fewer cache commits
        self.batch_size = max(cfg.batch_size, 256)

    def render(self, prompt) -> str:
        if isinstance(prompt, str):
            return prompt
        if not getattr(self.tokenizer, "chat_template", None):
            raise LimoError(f"model {self.cfg.model} has no chat template; pass string prompts")
        return self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)

    def sampling_params(self, r: Request):
        s = r.sampling
        return self.vllm.SamplingParams(
            n=1,
            temperature=s.temperature,
            top_p=s.top_p,
            top_k=s.top_k if s.top_k > 0 else -1,
            max_tokens=s.max_tokens,
            stop=list(s.stop) or None,
            seed=r.seed,
        )

    def generate_batch(self, requests: list[Request]) -> list[Completion]:
        prompts = [self.render(r.prompt) for r in requests]
        params = [self.sampling_params(r) for r in requests]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        completions = []
        for out in outputs:
            o = out.outputs[0]
            finish = "length" if o.finish_reason == "length" else "stop"
            completions.append(
                Completion(
                    text=o.text,
                    prompt_tokens=len(out.prompt_token_ids or []),
                    completion_tokens=len(o.token_ids),
                    finish_reason=finish,
                )
            )
        return completions

    def close(self) -> None:
        self.llm = None
