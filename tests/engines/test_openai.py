"""The `openai` engine against a real llama.cpp server, with a fault-injecting HTTP proxy in front of it.

.venv/bin/pytest tests/engines/test_openai.py
"""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from llama_helpers import free_port

from limo.engines.base import EngineConfig, SamplingParams
from limo.engines.cache import CachedEngine, GenerationCache
from limo.engines.openai import BackoffWithRetryAfter, OpenAIBackend, Retryable
from limo.errors import LimoError

pytestmark = pytest.mark.slow

SHORT = SamplingParams(max_tokens=12)
PROMPTS = [f"Write the number {i} in words." for i in range(6)]


def engine(base_url: str, cache_path, **kw) -> CachedEngine:
    cfg = EngineConfig(model="smollm2-135m", engine="openai", base_url=base_url, **kw)
    return CachedEngine(cfg, GenerationCache(cache_path))


class FaultProxy:
    """A real HTTP server that forwards to `upstream`, except that the first requests get the scripted faults:
    "429", "500" (an error answer) or "hang" (no answer until the proxy shuts down)."""

    def __init__(self, upstream: str, faults: list[str]):
        self.upstream = upstream.rstrip("/")
        self.faults = list(faults)
        self.seen: list[str] = []  # what each POST got: a fault or "ok"
        self.lock = threading.Lock()
        self.release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with proxy.lock:
                    fault = proxy.faults.pop(0) if proxy.faults else "ok"
                    proxy.seen.append(fault)
                if fault == "hang":
                    proxy.release.wait(60)
                    self.close_connection = True
                    return
                if fault in ("429", "500"):
                    payload = b'{"error": {"message": "injected ' + fault.encode() + b'"}}'
                    self.send_response(int(fault))
                    if fault == "429":
                        self.send_header("Retry-After", "0")
                else:
                    up = httpx.post(
                        proxy.upstream + self.path.removeprefix("/v1"),
                        content=body,
                        timeout=120,
                        headers={"Content-Type": "application/json"},
                    )
                    payload = up.content
                    self.send_response(up.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_chat_endpoint_generates(llama_server, tmp_path):
    eng = engine(llama_server.base_url, tmp_path / "c.sqlite", concurrency=2)
    outs = eng.generate(PROMPTS[:2] + [[{"role": "user", "content": "Say hello."}]], SHORT)
    assert len(outs) == 3
    for (c,) in outs:
        assert c.text.strip()
        assert c.prompt_tokens > 0 and 0 < c.completion_tokens <= 12
        assert c.finish_reason in ("stop", "length")
    assert eng.stats.generated == 3


def test_completions_endpoint_generates_and_rejects_messages(llama_server, tmp_path):
    eng = engine(llama_server.base_url, tmp_path / "c.sqlite", endpoint="completions")
    ((c,),) = eng.generate(["The capital of France is"], SamplingParams(max_tokens=6))
    assert c.text and c.completion_tokens > 0 and c.prompt_tokens > 0
    with pytest.raises(LimoError, match="completions.*string prompts"):
        eng.generate([[{"role": "user", "content": "hi"}]], SHORT)


def test_seed_reproduces_and_samples_differ(llama_server, tmp_path):
    sampling = SamplingParams(max_tokens=16, temperature=1.0, seed=7)
    first = engine(llama_server.base_url, tmp_path / "a.sqlite").generate(PROMPTS[:1], sampling, n=3)[0]
    again = engine(llama_server.base_url, tmp_path / "b.sqlite").generate(PROMPTS[:1], sampling, n=3)[0]
    assert [c.text for c in first] == [c.text for c in again]
    assert len({c.text for c in first}) > 1


def test_429_and_500_are_retried(llama_server, tmp_path):
    with FaultProxy(llama_server.base_url, ["429", "500", "429", "500"]) as proxy:
        eng = engine(proxy.base_url, tmp_path / "c.sqlite", concurrency=1, backoff_s=0.05, max_retries=4)
        outs = eng.generate(PROMPTS[:2], SHORT)
    assert all(o[0].text.strip() for o in outs)
    assert proxy.seen == ["429", "500", "429", "500", "ok", "ok"]


def test_client_errors_are_not_retried(llama_server, tmp_path):
    with FaultProxy(llama_server.base_url, []) as proxy:
        eng = engine(proxy.base_url.replace("/v1", "/nope"), tmp_path / "c.sqlite", backoff_s=0.05)
        with pytest.raises(LimoError, match="HTTP 404.*not retried"):
            eng.generate(PROMPTS[:1], SHORT)
    assert len(proxy.seen) == 1


def test_hanging_request_times_out_and_is_retried(llama_server, tmp_path):
    with FaultProxy(llama_server.base_url, ["hang"]) as proxy:
        eng = engine(
            proxy.base_url, tmp_path / "c.sqlite", concurrency=1, timeout_s=15, backoff_s=0.05
        )  # the real answer may be slow on a busy box
        ((c,),) = eng.generate(PROMPTS[:1], SHORT)
    assert c.text.strip()
    assert proxy.seen == ["hang", "ok"]


def test_hanging_server_is_reported(llama_server, tmp_path):
    with FaultProxy(llama_server.base_url, ["hang"] * 3) as proxy:
        eng = engine(proxy.base_url, tmp_path / "c.sqlite", timeout_s=0.5, backoff_s=0.05, max_retries=2)
        with pytest.raises(LimoError) as err:
            eng.generate(PROMPTS[:1], SHORT)
    msg = str(err.value)
    assert "after 3 attempts" in msg and "timed out after 0.5s" in msg and proxy.base_url in msg
    assert eng.cache.count() == 0  # nothing half-done was stored


def test_server_down_gives_clear_error(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"
    eng = engine(url, tmp_path / "c.sqlite", backoff_s=0.05, max_retries=2)
    with pytest.raises(LimoError) as err:
        eng.generate(PROMPTS[:1], SHORT)
    msg = str(err.value)
    assert "\n" not in msg
    assert f"{url}/chat/completions" in msg and "3 attempts" in msg and "connection error" in msg


def test_server_killed_mid_run_and_restarted(own_llama_server, llama_server, tmp_path):
    prompts = [f"Count from {i} to {i + 5}." for i in range(24)]
    sampling = SamplingParams(max_tokens=16)
    eng = engine(own_llama_server.base_url, tmp_path / "c.sqlite", concurrency=2, backoff_s=0.3, max_retries=8)
    assert eng.backend.batch_size == 8
    result: dict = {}
    runner = threading.Thread(target=lambda: result.setdefault("outs", eng.generate(prompts, sampling)))
    runner.start()
    deadline = time.monotonic() + 120
    while eng.cache.count() < 8 and time.monotonic() < deadline:  # the first batch is stored
        time.sleep(0.05)
    assert eng.cache.count() >= 8
    own_llama_server.kill()  # SIGKILL mid-run
    time.sleep(1.0)
    own_llama_server.start()
    runner.join(timeout=300)
    outs = result["outs"]
    assert len(outs) == 24 and all(len(o) == 1 and o[0].finish_reason in ("stop", "length") for o in outs)
    # every request stored exactly once (the key is the primary key; the count proves none is missing)
    conn = eng.cache._conn()
    assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM generations").fetchone() == (24, 24)
    assert eng.stats.generated == 24
    # the rerun makes no request at all, and the greedy outputs match a run that was never interrupted
    again = engine(own_llama_server.base_url, tmp_path / "c.sqlite")
    assert [o[0].text for o in again.generate(prompts, sampling)] == [o[0].text for o in outs]
    assert again.stats.generated == 0
    clean = engine(llama_server.base_url, tmp_path / "clean.sqlite", concurrency=2).generate(prompts, sampling)
    assert [o[0].text for o in clean] == [o[0].text for o in outs]


class _State:
    """The bits of a tenacity RetryCallState that the wait strategy reads."""

    def __init__(self, attempt: int, error: Exception):
        self.attempt_number = attempt

        class Outcome:
            def exception(self):
                return error

        self.outcome = Outcome()


def test_backoff_grows_with_jitter_and_honours_retry_after():
    wait = BackoffWithRetryAfter(multiplier=1.0, max=60)
    plain = Retryable("HTTP 500")
    for attempt in range(1, 6):
        delays = [wait(_State(attempt, plain)) for _ in range(20)]
        assert all(0 <= d <= min(60, 2**attempt) for d in delays)  # full jitter up to 2^attempt
        assert len(set(delays)) > 1  # jittered
    assert max(wait(_State(30, plain)) for _ in range(20)) <= 60  # capped
    assert wait(_State(1, Retryable("HTTP 429", retry_after=3))) >= 3  # Retry-After honoured


def test_api_key_from_environment(monkeypatch):
    monkeypatch.setenv("LIMO_TEST_KEY", "sk-test")
    b = OpenAIBackend(EngineConfig(engine="openai", api_key_env="LIMO_TEST_KEY"))
    assert b.headers["Authorization"] == "Bearer sk-test"
    monkeypatch.delenv("LIMO_TEST_KEY")
    assert "Authorization" not in OpenAIBackend(EngineConfig(engine="openai", api_key_env="LIMO_TEST_KEY")).headers


def test_reasoning_content_is_kept():
    b = OpenAIBackend(EngineConfig(engine="openai"))
    data = {
        "choices": [{"message": {"content": "42", "reasoning_content": "think"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 5},
    }
    c = b.parse(data)
    assert (c.text, c.reasoning, c.prompt_tokens, c.completion_tokens, c.finish_reason) == (
        "42",
        "think",
        3,
        5,
        "stop",
    )
