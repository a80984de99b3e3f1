"""The `openai` engine: any OpenAI-compatible server (vLLM, SGLang, llama.cpp, hosted APIs).

Requests in a batch run concurrently (asyncio + httpx, at most `cfg.concurrency` in flight).

Deadlines: every attempt has a deadline of `cfg.timeout_s` for the whole exchange (connect, send, and reading the
entire answer), so a server that trickles one byte a second fails at the deadline instead of resetting a per-read
timer; every request, retries and backoff included, ends within `cfg.deadline_s`.

Retries (tenacity): 408/409/425/429/5xx answers, connection errors and timeouts are retried with exponential backoff
and full jitter (`backoff_s * 2^attempt`, capped at 60 s, at least the server's Retry-After), up to
`cfg.max_retries` times; other 4xx answers fail at once. When a request has used all its tries, the batch raises
`LimoError` with one line naming the URL, the last status or error and the number of attempts (the CLI prints it).

Replies are validated before anything is cached: `content`/`text` must be a string (or null), `reasoning_content`
a string, usage counts whole numbers. A reply that breaks this raises `InvalidReply` at once (a server that sends an
object as content is broken, not busy), and nothing of that batch is cached.
The batch size is 4 x concurrency, so the generation cache commits finished work often.

    limo generate --engine openai --base-url http://127.0.0.1:8000/v1 --model my-model --input p.jsonl --out o.jsonl

The API key is read from the environment variable `cfg.api_key_env` (optional: local servers need none).
`reasoning_content` (DeepSeek-R1 style servers) is kept in `Completion.reasoning`.
"""

import asyncio
import os
import threading
import time
from typing import Any

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, stop_after_delay
from tenacity.wait import wait_random_exponential

from limo.engines.base import Completion, EngineConfig, Request, producer_info
from limo.errors import LimoError

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_BACKOFF_S = 60.0


class RequestFailed(LimoError):
    """A request that still failed after all retries (or with a non-retryable status)."""


class InvalidReply(RequestFailed):
    """The server answered 200 with a body that is not a valid completion (never retried, never cached)."""


class Retryable(Exception):
    """One failed attempt worth retrying; `retry_after` is the server's Retry-After in seconds, if any."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class BackoffWithRetryAfter(wait_random_exponential):
    """tenacity's full-jitter exponential backoff, but never shorter than the server's Retry-After."""

    def __call__(self, retry_state) -> float:
        delay = super().__call__(retry_state)
        error = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        return max(delay, min(retry_after, MAX_BACKOFF_S)) if retry_after is not None else delay


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _count(usage: dict, name: str) -> int:
    value = usage.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or value != int(value):
        raise ValueError(f"usage.{name} is {_short(repr(value), 60)}, not a token count")
    return int(value)


def _text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{where} is {type(value).__name__} ({_short(repr(value), 60)}), not a string")
    return value


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
        # the server's own model name and fingerprint are filled in from its answers
        self.producer = producer_info("openai", cfg.model, None, ("httpx", "tenacity"))
        self.producer["base_url"] = base

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
            messages = [{"role": "user", "content": r.prompt}] if isinstance(r.prompt, str) else r.prompt
            for i, m in enumerate(messages):
                if not isinstance(m, dict) or not isinstance(m.get("content"), str):
                    got = type(m.get("content")).__name__ if isinstance(m, dict) else type(m).__name__
                    raise LimoError(f"openai engine: messages[{i}].content must be a string, got {got}")
            body["messages"] = messages
        else:
            if not isinstance(r.prompt, str):
                raise LimoError(
                    "openai engine: the 'completions' endpoint takes string prompts, not chat messages; "
                    "use endpoint 'chat' or pass 'prompt' strings"
                )
            body["prompt"] = r.prompt
        return body

    def parse(self, data: Any) -> Completion:
        """A Completion from a 200 answer's JSON; InvalidReply when it is not a well-formed completion."""
        try:
            return self._parse(data)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
            raise InvalidReply(
                f"openai engine: {self.url} returned an invalid reply ({e}); nothing from this batch was cached: "
                f"{_short(str(data))}"
            ) from e

    def _parse(self, data: Any) -> Completion:
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list) or not data["choices"]:
            raise ValueError("no choices")
        choice = data["choices"][0]
        if not isinstance(choice, dict):
            raise ValueError("choices[0] is not an object")
        if self.cfg.endpoint == "chat":
            message = choice.get("message") or {}
            if not isinstance(message, dict):
                raise ValueError("choices[0].message is not an object")
            text = _text(message.get("content"), "choices[0].message.content")
            reasoning = message.get("reasoning_content", message.get("reasoning"))
            reasoning = _text(reasoning, "choices[0].message.reasoning_content") or None
        else:
            text = _text(choice.get("text"), "choices[0].text")
            reasoning = None
        usage = data.get("usage") or {}
        if not isinstance(usage, dict):
            raise ValueError("usage is not an object")
        finish = choice.get("finish_reason") or "stop"
        if not isinstance(finish, str):
            raise ValueError(f"choices[0].finish_reason is {type(finish).__name__}, not a string")
        if finish not in ("stop", "length"):
            finish = "length" if finish == "max_tokens" else "stop"
        served = {k: data[k] for k in ("model", "system_fingerprint") if isinstance(data.get(k), str)}
        return Completion(
            text=text,
            prompt_tokens=_count(usage, "prompt_tokens"),
            completion_tokens=_count(usage, "completion_tokens"),
            finish_reason=finish,
            reasoning=reasoning,
            producer={**self.producer, **({"served": served} if served else {})},
        )

    # ----- async machinery ----------------------------------------------------------------------------------
    async def _attempt(self, client: httpx.AsyncClient, body: dict, timeout_s: float) -> Completion:
        """One POST; the whole exchange (answer body included) must finish within `timeout_s`."""
        self.calls += 1
        try:
            response = await asyncio.wait_for(client.post(self.url, json=body, headers=self.headers), timeout_s)
        except (asyncio.TimeoutError, httpx.TimeoutException) as e:
            raise Retryable(f"timed out after {timeout_s:g}s") from e
        except httpx.TransportError as e:
            raise Retryable(f"connection error ({type(e).__name__}: {_short(str(e), 120) or 'no detail'})") from e
        if response.status_code == 200:
            try:
                data = response.json()
            except ValueError as e:
                raise Retryable(f"HTTP 200 with a body that is not JSON: {_short(response.text)}") from e
            return self.parse(data)
        if response.status_code in RETRY_STATUS:
            raise Retryable(f"HTTP {response.status_code}: {_short(response.text)}", _retry_after(response))
        raise RequestFailed(
            f"openai engine: {self.url} answered HTTP {response.status_code} (not retried): {_short(response.text)}"
        )

    async def _one(self, client: httpx.AsyncClient, sem: asyncio.Semaphore, r: Request) -> Completion:
        body = self.payload(r)
        attempts = self.cfg.max_retries + 1
        deadline = time.monotonic() + self.cfg.deadline_s
        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts) | stop_after_delay(self.cfg.deadline_s),
            wait=BackoffWithRetryAfter(multiplier=self.cfg.backoff_s, max=MAX_BACKOFF_S),
            retry=retry_if_exception_type(Retryable),
            reraise=True,
        )
        tried = 0
        try:
            async for attempt in retrying:
                with attempt:
                    tried += 1
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise Retryable(f"request deadline of {self.cfg.deadline_s:g}s reached")
                    async with sem:
                        return await self._attempt(client, body, min(self.cfg.timeout_s, left))
        except Retryable as e:
            hint = f" (is the server running at {self.cfg.base_url}?)" if str(e).startswith("connection") else ""
            raise RequestFailed(
                f"openai engine: {self.url} failed after {tried} attempts; last error: {e}{hint}"
            ) from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _run(self, requests: list[Request]) -> list[Completion]:
        sem = asyncio.Semaphore(self.cfg.concurrency)
        limits = httpx.Limits(max_connections=self.cfg.concurrency, max_keepalive_connections=self.cfg.concurrency)
        timeout = httpx.Timeout(self.cfg.timeout_s)  # per read; _attempt bounds the whole exchange
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
