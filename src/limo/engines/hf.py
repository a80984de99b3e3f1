"""The `hf` engine: transformers `generate`, batched with left padding, on CPU or GPU.

Sampling is reproducible per request, independent of which other requests share the batch: each row gets its
own torch.Generator seeded from the request key, and a logits processor draws that row's token (greedy decoding
then picks it). So a resumed run, whose batches differ, produces the same samples as an uninterrupted one.

GGUF files are de-quantised by transformers (`gguf_file=`); the result is saved once under the limo cache
(`<cache>/models/`) so later loads skip the conversion.

Context length (the model's `max_position_embeddings`, or `EngineConfig.max_model_len` when smaller), as vllm does
it: a prompt that leaves no room for one new token is not generated; it comes back as an error completion with
reason `prompt_too_long`, counted in the engine stats and never cached. A prompt that fits generates up to
`max_tokens` or the end of the context, whichever comes first (finish_reason "length" when cut). A prompt longer
than `context x (longest vocabulary entry)` characters cannot fit whatever its tokens are, so it is refused before
it is tokenised: a 50 MB prompt costs a length check, not minutes of tokenising and a huge allocation
(`encode_within`).
"""

import hashlib
from pathlib import Path

from limo.engines.base import Completion, EngineConfig, Request, dropped, producer_info
from limo.engines.models import ResolvedModel, model_revision, resolve
from limo.paths import cache_dir


def _converted_dir(resolved: ResolvedModel) -> Path:
    gguf = Path(resolved.path) / resolved.gguf_file
    stat = gguf.stat()
    tag = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return cache_dir() / "models" / f"{gguf.stem}-{tag}"


def local_model_dir(model: str) -> str:
    """A directory (or hub id) from_pretrained can load without `gguf_file`: GGUF models are converted once."""
    resolved = resolve(model)
    if resolved.gguf_file is None:
        return resolved.path
    target = _converted_dir(resolved)
    if not (target / "config.json").exists():
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(resolved.path, gguf_file=resolved.gguf_file)
        mdl = AutoModelForCausalLM.from_pretrained(resolved.path, gguf_file=resolved.gguf_file)
        # transformers marks GGUF-loaded models as quantised although the weights are de-quantised already
        mdl.hf_quantizer = None
        if hasattr(mdl.config, "quantization_config"):
            del mdl.config.quantization_config
        tmp = target.with_name(target.name + ".tmp")
        mdl.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        tmp.rename(target)
    return str(target)


def load_model_and_tokenizer(model: str, device: str = "auto", dtype: str = "auto"):
    """(model, tokenizer) for an alias, hub id, directory or GGUF file, in eval mode on `device`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        torch_dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    else:
        torch_dtype = getattr(torch, dtype)
    path = local_model_dir(model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    mdl = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype).to(device)
    mdl.eval()
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return mdl, tokenizer


def render_prompt(tokenizer, prompt) -> str:
    """Chat messages go through the model's chat template; a string is used as it is."""
    if isinstance(prompt, str):
        return prompt
    if not tokenizer.chat_template:
        raise ValueError("this model has no chat template; pass raw string prompts or set a template")
    return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)


def longest_token_chars(tokenizer) -> int:
    """The most characters one token can stand for (the longest vocabulary entry; byte-level entries are at least
    as long as the text they decode to)."""
    return max(len(t) for t in tokenizer.get_vocab())


def encode_within(tokenizer, text: str, limit: int, max_token_chars: int) -> list[int] | None:
    """The token ids of `text` (no special tokens added: chat templates write their own), or None when it has more
    than `limit` tokens. Text longer than limit x max_token_chars characters is refused without tokenising it."""
    if len(text) > limit * max_token_chars:
        return None
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids if len(ids) <= limit else None


class _PerRowSampler:
    """Logits processor: temperature / top-k / top-p sampling with one generator per row."""

    def __init__(self, seeds: list[int], temperature: float, top_p: float, top_k: int):
        import torch

        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k

    def __call__(self, input_ids, scores):
        import torch

        logits = scores.float().cpu() / self.temperature
        if self.top_k > 0:
            kth = torch.topk(logits, min(self.top_k, logits.shape[-1]), dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p < 1.0:
            sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
            cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
            remove = cumulative - torch.softmax(sorted_logits, dim=-1) > self.top_p
            sorted_logits = sorted_logits.masked_fill(remove, float("-inf"))
            logits = torch.full_like(logits, float("-inf")).scatter(1, order, sorted_logits)
        probs = torch.softmax(logits, dim=-1)
        chosen = torch.stack([torch.multinomial(probs[i], 1, generator=g) for i, g in enumerate(self.generators)])
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, chosen.to(scores.device), 0.0)
        return out


class HFBackend:
    def __init__(self, cfg: EngineConfig):
        self.cfg = cfg
        self.batch_size = cfg.batch_size
        self.model, self.tokenizer = load_model_and_tokenizer(cfg.model, cfg.device, cfg.dtype)
        self.context = context_length(self.model.config, cfg.max_model_len)
        self.max_token_chars = longest_token_chars(self.tokenizer)
        revision = getattr(self.model.config, "_commit_hash", None) or model_revision(cfg.model)
        self.producer = producer_info("hf", cfg.model, revision, ("transformers", "torch"))

    def generate_batch(self, requests: list[Request]) -> list[Completion]:
        # requests with different sampling settings are generated in separate groups
        groups: dict = {}
        for i, r in enumerate(requests):
            groups.setdefault(r.sampling, []).append(i)
        out: list[Completion | None] = [None] * len(requests)
        for sampling, idxs in groups.items():
            for i, c in zip(idxs, self._generate_group([requests[i] for i in idxs], sampling), strict=True):
                out[i] = c
        return out  # type: ignore[return-value]

    def _generate_group(self, requests: list[Request], sampling) -> list[Completion]:
        import torch
        from transformers import LogitsProcessorList

        tok = self.tokenizer
        limit = self.context - 1  # a prompt must leave room for one new token
        encoded = [encode_within(tok, render_prompt(tok, r.prompt), limit, self.max_token_chars) for r in requests]
        fits = [i for i, ids in enumerate(encoded) if ids is not None]
        out = [dropped("prompt_too_long") for _ in requests]
        if not fits:
            return out
        requests = [requests[i] for i in fits]
        enc = tok.pad({"input_ids": [encoded[i] for i in fits]}, return_tensors="pt").to(self.model.device)
        prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
        # each row may generate up to the context end; tokens past a row's own room are cut below, so what a row
        # gets does not depend on its batch neighbours (RoPE models compute positions past the end without error)
        rooms = [min(sampling.max_tokens, self.context - int(plen)) for plen in prompt_lens]
        processors = LogitsProcessorList()
        if not sampling.greedy:
            processors.append(
                _PerRowSampler([r.seed for r in requests], sampling.temperature, sampling.top_p, sampling.top_k)
            )
        kwargs = {}
        if sampling.stop:
            kwargs = {"stop_strings": list(sampling.stop), "tokenizer": tok}
        with torch.inference_mode():
            generated = self.model.generate(
                **enc,
                max_new_tokens=max(rooms),
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                logits_processor=processors,
                pad_token_id=tok.pad_token_id,
                **kwargs,
            )
        new_tokens = generated[:, enc["input_ids"].shape[1] :].tolist()
        eos_ids = set(self._eos_ids())
        completions = []
        for row, plen, room in zip(new_tokens, prompt_lens, rooms, strict=True):
            row = row[:room]
            ids, finish = [], "length"
            for t in row:
                if t in eos_ids:
                    finish = "stop"
                    break
                ids.append(t)
            text = tok.decode(ids, skip_special_tokens=True)
            hit = _first_stop(text, sampling.stop)
            if hit is not None:
                text, finish = text[:hit], "stop"
            count = len(ids) + (1 if finish == "stop" and len(ids) < len(row) else 0)
            completions.append(
                Completion(text=text, prompt_tokens=int(plen), completion_tokens=count, finish_reason=finish)
            )
        for i, c in zip(fits, completions, strict=True):
            out[i] = c
        return out

    def _eos_ids(self) -> list[int]:
        ids = self.model.generation_config.eos_token_id
        ids = ids if isinstance(ids, list) else [ids]
        ids = [i for i in ids if i is not None]
        if self.tokenizer.eos_token_id is not None:
            ids.append(self.tokenizer.eos_token_id)
        return ids

    def close(self) -> None:
        self.model = None


def context_length(config, max_model_len: int | None) -> int:
    """Tokens the model can attend to: max_position_embeddings (or n_positions), capped by max_model_len."""
    known = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    limits = [v for v in (known, max_model_len) if v]
    return min(limits) if limits else 2048  # no limit recorded anywhere: our choice, the smallest common context


def _first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    hits = [text.find(s) for s in stops if s and s in text]
    return min(hits) if hits else None
