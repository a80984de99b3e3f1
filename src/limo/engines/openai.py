"""The `openai` engine: any OpenAI-compatible server (vLLM, SGLang, llama.cpp, hosted APIs).

Requests in a batch run concurrently (asyncio + httpx, at most `cfg.concurrency` in flight). A request that fails
with 408/409/429/5xx, a connection error or a timeout is retried with exponential backoff and jitter, up to
`cfg.max_retries` times; other 4xx answers fail at once. When a request has used all its tries, the batch raises
`LimoError` with one line naming the URL, the last status or error and the number of attempts (the CLI prints it).
The batch size is 4 x concurrency, so the generation cache commits finished work often.

    limo generate --engine openai --base-url http://127.0.0.1:8000/v1 --model my-model --input p.jsonl --out o.jsonl

The API key is read from the environment variable `cfg.api_key_env` (optional: local servers need none).
`reasoning_content` (DeepSeek-R1 style servers) is kept in `Completion.reasoning`.
"""

import asyncio
import os
import random
import threading
from typing import Any

import httpx

from limo.engines.base import Completion, EngineConfig, Request
from limo.errors import LimoError

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_BACKOFF_S = 60.0


class RequestFailed(LimoError):
    """A request that still failed after all retries (or with a non-retryable status)."""


def backoff_delay(attempt: int, base_s: float, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter: base * 2^attempt, scaled by a random factor in [0.5, 1.5), capped."""
    delay = min(MAX_BACKOFF_S, base_s * (2**attempt)) * random.uniform(0.5, 1.5)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_BACKOFF_S))
    return delay


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


class OpenAIBackend:
    def __init__(self, cfg: EngineConfig):
        if cfg.endpoint not in ("chat", "completions"):
            raise LimoError(f"openai engine: endpoint must be 'chat' or 'completions', got {cfg.endpoint!r}")
        self.cfg = cfg
        self.batch_size = 4 * cfg.concurrency
        base = cfg.base_url.rstrip("/")
        self.url = base + ("/chat/completions" if cfg.endpoint == "chat" else "/completions")
        self.headers = {"Content-Type": "application/json"}
        key = os.environ.get(cfg.api_key_env) if cfg.api_key_env else None
        if key:
            self.headers["Authorization"] = f"Bearer {key}"
        self.calls = 0  # HTTP requests sent, retries included

    # ----- request/response mapping -------------------------------------------------------------------------
    def payload(self, r: Request) -> dict[str, Any]:
        s = r.sampling
        body: dict[str, Any] = {
            "model": self.cfg.model,
            "max_tokens": s.max_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "seed": r.seed,
            "n": 1,
        }
        if s.top_k > 0:
            body["top_k"] = s.top_k  # non-standard, understood by vLLM, SGLang and llama.cpp
        if s.stop:
            body["stop"] = list(s.stop)
        if self.cfg.endpoint == "chat":
            body["messages"] = [{"role": "user", "content": r.prompt}] if isinstance(r.prompt, str) else r.prompt
        else:
            if not isinstance(r.prompt, str):
                raise LimoError(
                    "openai engine: the 'completions' endpoint takes string prompts, not chat messages; "
                    "use endpoint 'chat' or pass 'prompt' strings"
                )
            body["prompt"] = r.prompt
        return body

    def parse(self, data: dict[str, Any]) -> Completion:
        try:
            choice = data["choices"][0]
        except (KeyError, IndexError, TypeError) as e:
            raise LimoError(f"openai engine: {self.url} returned no choices: {_short(str(data))}") from e
        if self.cfg.endpoint == "chat":
            message = choice.get("message") or {}
            text = message.get("content") or ""
            reasoning = message.get("reasoning_content") or message.get("reasoning")
        else:
            text = choice.get("text") or ""
            reasoning = None
        usage = data.get("usage") or {}
        finish = choice.get("finish_reason") or "stop"
        if finish not in ("stop", "length"):
            finish = "length" if finish == "max_tokens" else "stop"
        return Completion(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason=finish,
            reasoning=reasoning if isinstance(reasoning, str) and reasoning else None,
        )

    # ----- async machinery ----------------------------------------------------------------------------------
    async def _one(self, client: httpx.AsyncClient, sem: asyncio.Semaphore, r: Request) -> Completion:
        body = self.payload(r)
        attempts = self.cfg.max_retries + 1
        last = "no attempt made"
        for attempt in range(attempts):
            retry_after = None
            async with sem:
                self.calls += 1
                try:
                    response = await client.post(self.url, json=body, headers=self.headers)
                except httpx.TimeoutException:
                    last = f"timed out after {self.cfg.timeout_s:g}s"
                except httpx.TransportError as e:
                    last = f"connection error ({type(e).__name__}: {_short(str(e), 120) or 'no detail'})"
                else:
                    if response.status_code == 200:
                        try:
                            data = response.json()
                        except ValueError:
                            last = f"HTTP 200 with a body that is not JSON: {_short(response.text)}"
                        else:
                            return self.parse(data)
                    elif response.status_code in RETRY_STATUS:
                        last = f"HTTP {response.status_code}: {_short(response.text)}"
                        retry_after = _retry_after(response)
                    else:
                        raise RequestFailed(
                            f"openai engine: {self.url} answered HTTP {response.status_code} (not retried): "
                            f"{_short(response.text)}"
                        )
            if attempt + 1 < attempts:
                await asyncio.sleep(backoff_delay(attempt, self.cfg.backoff_s, retry_after))
        hint = f" (is the server running at {self.cfg.base_url}?)" if last.startswith("connection error") else ""
        raise RequestFailed(f"openai engine: {self.url} failed after {attempts} attempts; last error: {last}{hint}")

    async def _run(self, requests: list[Request]) -> list[Completion]:
        sem = asyncio.Semaphore(self.cfg.concurrency)
        limits = httpx.Limits(max_connections=self.cfg.concurrency, max_keepalive_connections=self.cfg.concurrency)
        timeout = httpx.Timeout(self.cfg.timeout_s)
        async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
            tasks = [asyncio.create_task(self._one(client, sem, r)) for r in requests]
            try:
                return list(await asyncio.gather(*tasks))
            finally:  # on the first failure, stop the others instead of letting them retry on
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    def generate_batch(self, requests: list[Request]) -> list[Completion]:
        for r in requests:  # fail before sending anything if a prompt can't go to this endpoint
            self.payload(r)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._run(requests))
        # called from inside an event loop (a notebook, an async app): run in a helper thread
        result: dict[str, Any] = {}

        def target():
            try:
                result["value"] = asyncio.run(self._run(requests))
            except BaseException as e:  # re-raised in the caller's thread
                result["error"] = e

        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
        if "error" in result:
            raise result["error"]
        return result["value"]

    def close(self) -> None:
        pass
