"""A scripted OpenAI-compatible server for tests: a real HTTP server on 127.0.0.1 whose replies a test decides.

    with ScriptedOpenAI(lambda request: chat_reply("42")) as server:
        EngineConfig(engine="openai", base_url=server.base_url, ...)
        server.requests   # every request body received, in order

`reply(request)` gets the parsed JSON body and returns the reply body (status 200), or (status, body).
"""

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[dict[str, Any]], dict[str, Any] | tuple[int, dict[str, Any]]]


def chat_reply(content: Any, usage: dict[str, Any] | None = None, model: str = "scripted") -> dict[str, Any]:
    """A chat.completion body with one choice (content and usage as given, even of the wrong type)."""
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5} if usage is None else usage,
    }


class ScriptedOpenAI:
    def __init__(self, reply: Reply, model: str = "scripted"):
        self.requests: list[dict[str, Any]] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                self._send(200, {"object": "list", "data": [{"id": model, "object": "model"}]})

            def do_POST(self) -> None:  # noqa: N802
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                scripted.requests.append(request)
                answer = reply(request)
                self._send(*(answer if isinstance(answer, tuple) else (200, answer)))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> "ScriptedOpenAI":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
