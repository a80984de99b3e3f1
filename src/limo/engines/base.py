"""The engine interface: `generate(prompts, sampling, n) -> list[list[Completion]]`.

A prompt is either a raw string (completion-style) or a list of chat messages ({"role", "content"}).
Every engine is wrapped in `CachedEngine` (cache.py): each (model, prompt, sampling, sample index) is generated once
and stored in a persistent SQLite cache, so reruns and resumed runs never pay for the same generation twice.

Backends implement `Backend.generate_batch(requests) -> list[Completion]`, one completion per request; the cache
layer splits work into batches of `backend.batch_size` and stores each batch as soon as it finishes.

    from limo.engines import EngineConfig, SamplingParams, make_engine
    engine = make_engine(EngineConfig(model="smollm2-135m", engine="hf"))
    outs = engine.generate(["What is 2+2?"], SamplingParams(max_tokens=32), n=1)
"""

import hashlib
import json
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from limo.errors import LimoError

Prompt = str | list[dict[str, str]]


EngineName = Literal["hf", "vllm", "openai", "ray"]
ENGINES: tuple[str, ...] = typing.get_args(EngineName)  # add a branch in make_backend() with a new name


class SettingError(LimoError, ValueError):
    """A decoding or engine setting out of range (a user error: one line, exit code 2)."""


@dataclass(frozen=True)
class SamplingParams:
    """Decoding settings. temperature 0 = greedy. `seed` makes sampled outputs reproducible per sample index."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int = 0

    def __post_init__(self):
        if self.temperature < 0:
            raise SettingError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise SettingError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise SettingError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.top_k < 0:
            raise SettingError(f"top_k must be >= 0 (0 = off), got {self.top_k}")
        object.__setattr__(self, "stop", tuple(self.stop))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length" | "error"
    reasoning: str | None = None  # reasoning_content, when a server returns it separately (DeepSeek-R1 style)
    cached: bool = False
    # who made it: engine, model (with revision or file fingerprint) and library versions; see `producer_info`
    producer: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # why finish_reason is "error" (e.g. "prompt_too_long"); errors are never cached

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("cached")
        if d["error"] is None:
            d.pop("error")
        return d


def completion_problem(c: Completion) -> str | None:
    """Why `c` must not be cached (None when it may): errors, and fields of the wrong type from a bad backend."""
    if c.finish_reason not in ("stop", "length"):
        return f"finish_reason {c.finish_reason!r}"
    if not isinstance(c.text, str):
        return f"text is {type(c.text).__name__}, not a string"
    if c.reasoning is not None and not isinstance(c.reasoning, str):
        return f"reasoning is {type(c.reasoning).__name__}, not a string"
    for name in ("prompt_tokens", "completion_tokens"):
        value = getattr(c, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"{name} is {value!r}, not a count"
    return None


def dropped(reason: str, prompt_tokens: int = 0) -> Completion:
    """The completion of a request the engine refused before generating (counted by reason, never cached)."""
    return Completion(text="", prompt_tokens=prompt_tokens, completion_tokens=0, finish_reason="error", error=reason)


def library_versions(*names: str) -> dict[str, str]:
    """Installed versions of `limo` and the named distributions (missing ones are left out)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in sorted({"limo", *names}):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def producer_info(engine: str, model: str, revision: str | None, libraries: tuple[str, ...]) -> dict[str, Any]:
    """The `producer` stamped on every completion an engine makes (and stored with its cache row)."""
    return {"engine": engine, "model": model, "revision": revision, "versions": library_versions(*libraries)}


@dataclass
class Request:
    """One generation: a prompt, the sampling settings, which sample it is, and its cache key / derived seed."""

    prompt: Prompt
    sampling: SamplingParams
    sample_index: int
    key: str
    seed: int


class Backend(Protocol):
    batch_size: int

    def generate_batch(self, requests: list[Request]) -> list[Completion]: ...

    def close(self) -> None: ...


@dataclass
class EngineConfig:
    """Which model, served how. `model` is an alias (see models.py), a hub id, a local dir, or a .gguf path.

    `cache_id` names the model in the generation cache (default: `model`); the cache key does not include the
    engine, so the same model served through another engine reuses its generations.
    """

    model: str = "smollm2-135m"
    engine: EngineName = "hf"
    cache_id: str | None = None
    batch_size: int = 8
    # hf / vllm
    device: str = "auto"
    dtype: str = "auto"
    # openai
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key_env: str = "OPENAI_API_KEY"
    endpoint: Literal["chat", "completions"] = "chat"
    concurrency: int = 8
    timeout_s: float = 600.0  # one attempt, answer included (not per read)
    deadline_s: float = 1800.0  # one request, retries and backoff included
    max_retries: int = 6
    backoff_s: float = 1.0
    # vllm
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None
    load_format: str = "auto"  # "dummy" = random weights, for smoke tests without downloading a checkpoint
    batch_invariant: bool = False  # vllm: results independent of batch composition (VLLM_BATCH_INVARIANT=1)
    # ray: the engine each replica runs, and how many replicas
    inner: dict[str, Any] = field(default_factory=dict)
    replicas: int = 1
    ray_address: str | None = None
    ray_cpus_per_replica: float = 1.0
    ray_ready_timeout_s: float = 600.0  # replicas that are not up (placed and model loaded) by then: a clear error
    ray_max_attempts: int = 3  # tries of one request whose task raises before it is counted failed

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise SettingError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        for name in ("batch_size", "concurrency", "replicas", "tensor_parallel_size", "ray_max_attempts"):
            if getattr(self, name) < 1:
                raise SettingError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("timeout_s", "deadline_s", "ray_cpus_per_replica", "ray_ready_timeout_s"):
            if not getattr(self, name) > 0:
                raise SettingError(f"{name} must be > 0 seconds, got {getattr(self, name)}")
        if self.max_retries < 0 or self.backoff_s < 0:
            raise SettingError("max_retries and backoff_s must be >= 0")
        if self.max_model_len is not None and self.max_model_len < 2:
            raise SettingError(f"max_model_len must be >= 2, got {self.max_model_len}")

    @property
    def identity(self) -> str:
        """The model's name in the cache. A local model directory also carries a fingerprint of its weight
        files, so retraining into the same directory never reuses the old model's generations."""
        if self.cache_id:
            return self.cache_id
        return self.model + local_fingerprint(self.model)


def local_fingerprint(model: str) -> str:
    """'@<hash of weight file names, sizes, mtimes>' for a local model directory, '' otherwise."""
    path = Path(model)
    if not path.is_dir():
        return ""
    files = sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".bin", ".gguf", ".pt"))
    blob = "|".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)
    return "@" + hashlib.sha256(blob.encode()).hexdigest()[:12]


def request_key(model_identity: str, prompt: Prompt, sampling: SamplingParams, sample_index: int) -> str:
    """Engine-independent cache key: model identity, prompt or messages, sampling params and sample index."""
    blob = json.dumps(
        {"model": model_identity, "prompt": prompt, "sampling": asdict(sampling), "sample": sample_index},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def request_seed(key: str) -> int:
    """A per-request seed derived from the key (which includes sampling.seed and the sample index)."""
    return int(key[:8], 16)


def make_backend(cfg: EngineConfig) -> Backend:
    if cfg.engine == "hf":
        from limo.engines.hf import HFBackend

        return HFBackend(cfg)
    if cfg.engine == "vllm":
        from limo.engines.vllm import VLLMBackend

        return VLLMBackend(cfg)
    if cfg.engine == "openai":
        from limo.engines.openai import OpenAIBackend

        return OpenAIBackend(cfg)
    if cfg.engine == "ray":
        from limo.engines.ray import RayBackend

        return RayBackend(cfg)
    raise ValueError(f"unknown engine {cfg.engine!r}; choose hf, vllm, openai or ray")


def make_engine(cfg: EngineConfig, cache_path: str | Path | None = None):
    """A cached engine for `cfg`. The backend (and its model) loads lazily, on the first cache miss."""
    from limo.engines.cache import CachedEngine, GenerationCache
    from limo.paths import default_generation_cache

    return CachedEngine(cfg, GenerationCache(cache_path or default_generation_cache()))
