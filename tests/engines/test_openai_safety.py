"""Data safety of the `openai` engine against a small local HTTP server that sends scripted (bad) replies:
nothing malformed is ever cached, and every request ends within its deadline even when the server trickles.

.venv/bin/pytest tests/engines/test_openai_safety.py
"""

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from llama_helpers import free_port

from limo.engines.base import EngineConfig, SamplingParams
from limo.engines.cache import CachedEngine, GenerationCache
from limo.errors import LimoError

SHORT = SamplingParams(max_tokens=8)
TRICKLE_BODY = 60  # bytes the trickling server means to send, one a second


def good_reply(content="4", usage=None) -> dict:
    usage = usage if usage is not None else {"prompt_tokens": 5, "completion_tokens": 1}
    return {
        "model": "scripted",
        "choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": usage,
    }


class ScriptedServer:
    """A real HTTP server on 127.0.0.1 answering every POST with `reply` (a dict sent as JSON), or trickling a
    body one byte per second when `reply == "trickle"`. It records the requests and the bytes it got out."""

    def __init__(self, reply):
        self.reply = reply
        self.requests = 0
        self.trickled: list[int] = []  # bytes of body each trickling answer sent before the client went away
        self.done = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.requests += 1
                if server.reply == "trickle":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(TRICKLE_BODY))
                    self.end_headers()
                    sent = 0
                    try:
                        for _ in range(TRICKLE_BODY):
                            self.wfile.write(b" ")
                            self.wfile.flush()
                            sent += 1
                            time.sleep(1.0)
                    except OSError:
                        pass
                    server.trickled.append(sent)
                    server.done.set()
                    return
                body = json.dumps(server.reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def engine(url: str, tmp_path, **kw) -> CachedEngine:
    cfg = EngineConfig(model="scripted", engine="openai", base_url=url, backoff_s=0.01, **kw)
    return CachedEngine(cfg, GenerationCache(tmp_path / "gen.sqlite"))


@pytest.mark.parametrize(
    "reply, field",
    [
        (good_reply(content={"text": "4"}), "content is dict"),
        (good_reply(content=["4"]), "content is list"),
        (good_reply(content=4), "content is int"),
        (good_reply(usage={"prompt_tokens": "5", "completion_tokens": 1}), "usage.prompt_tokens"),
        (good_reply(usage={"prompt_tokens": 5, "completion_tokens": 1.5}), "usage.completion_tokens"),
        (good_reply(usage=[5, 1]), "usage is not an object"),
        ({"choices": [{"message": {"content": "4", "reasoning_content": {"x": 1}}}]}, "reasoning_content is dict"),
        ({"choices": []}, "no choices"),
    ],
)
def test_a_malformed_reply_is_an_error_and_never_cached(tmp_path, reply, field):
    with ScriptedServer(reply) as server:
        eng = engine(server.base_url, tmp_path, max_retries=3)
        with pytest.raises(LimoError, match="invalid reply") as err:
            eng.generate(["What is 2+2?", "What is 3+1?"], SHORT)
    assert field in str(err.value) and "\n" not in str(err.value)
    assert eng.cache.count() == 0  # nothing of that batch was stored
    assert 1 <= server.requests <= 2  # at most one per prompt: a malformed reply is not retried (3 retries allowed)


def test_a_well_formed_reply_is_cached_with_its_producer(tmp_path):
    with ScriptedServer(good_reply(usage={"prompt_tokens": 5.0, "completion_tokens": 1})) as server:
        eng = engine(server.base_url, tmp_path)
        ((c,),) = eng.generate(["What is 2+2?"], SHORT)
    assert (c.text, c.prompt_tokens, c.completion_tokens) == ("4", 5, 1)
    assert eng.cache.count() == 1
    (stored,) = eng.cache.get_many([eng.requests(["What is 2+2?"], SHORT, 1)[0][0].key]).values()
    assert stored.producer["engine"] == "openai" and stored.producer["served"] == {"model": "scripted"}
    assert "httpx" in stored.producer["versions"] and stored.producer["base_url"] == server.base_url.rstrip("/")


def test_a_trickling_server_fails_at_the_attempt_deadline(tmp_path):
    with ScriptedServer("trickle") as server:
        eng = engine(server.base_url, tmp_path, timeout_s=2, max_retries=0)
        with pytest.raises(LimoError, match="timed out after 2s"):
            eng.generate(["hello"], SHORT)
        assert server.done.wait(60), "the server never noticed the client leaving"
    # the client hung up long before the 60-byte body was through (a per-read timeout would have waited it out)
    assert server.trickled and server.trickled[0] < TRICKLE_BODY
    assert eng.cache.count() == 0


def test_retries_stop_at_the_request_deadline(tmp_path):
    with ScriptedServer("trickle") as server:
        eng = engine(server.base_url, tmp_path, timeout_s=2, deadline_s=3, max_retries=10)
        with pytest.raises(LimoError, match="failed after [12] attempts"):
            eng.generate(["hello"], SHORT)
    assert 1 <= server.requests <= 2  # 10 retries allowed, but the 3 s deadline leaves room for 2 at most


def test_integer_chat_content_is_a_user_error(tmp_path):
    from limo.engines.openai import OpenAIBackend

    with pytest.raises(LimoError, match=r"messages\[0\]\.content must be a string, got int"):
        OpenAIBackend(EngineConfig(engine="openai")).generate_batch(
            CachedEngine(EngineConfig(), GenerationCache(tmp_path / "c.sqlite")).requests(
                [[{"role": "user", "content": 7}]], SHORT, 1
            )[0]
        )
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": 7}]}) + "\n")
    cmd = [sys.executable, "-m", "limo.cli", "generate", "--input", str(bad), "--out", str(tmp_path / "o.jsonl")]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 2
    message = (run.stdout + run.stderr).strip()
    assert len(message.splitlines()) == 1 and "line 1" in message and "messages" in message
