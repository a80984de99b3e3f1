"""`limo review RUN`: a local web page (127.0.0.1 only) to read, compare and accept or reject candidate solutions.

Serves src/limo/review/static/ (page, script, bundled KaTeX: no CDN, works offline) and a small JSON API:

    GET  /api/problems          problem summaries, filter facets, progress, unreadable decision lines
    GET  /api/problem/<id>      one problem with every verified candidate (features, evidence spans, scores)
    POST /api/decision          {"problem_id", "action": accept|reject|annotate|clear, "candidate_id"?, "note"?}

Decisions are appended to RUN/review/decisions.jsonl and fsynced before the page is told "saved".
Run: `limo review runs/demo --port 8765 --reviewer ann`, then open the printed URL.

Guards: the Host header must be 127.0.0.1 or localhost at this server's port (DNS rebinding), an Origin header, when
sent, must be this server (cross-site requests), a POST must be exactly `application/json` (charset utf-8 if given)
with a Content-Length body that arrives within SOCKET_TIMEOUT_S. Every malformed request gets a 400 (403 for a
foreign Host/Origin, 415 for another content type) and one quiet log line at most: client errors never log a
traceback.
"""

import json
import mimetypes
import threading
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from limo.errors import InputError, LimoError
from limo.review.data import ReviewData, load_review_data
from limo.review.decisions import (
    BrokenLine,
    DecisionLog,
    decisions_path,
    load_decisions_tolerant,
)

STATIC_DIR = Path(__file__).parent / "static"
HOST = "127.0.0.1"
MAX_BODY = 1 << 20
SOCKET_TIMEOUT_S = 10.0  # per read: a client that sends a short body or stalls is answered 400 and let go
# the page may load only from this server: no CDN, no remote fonts (KaTeX sets inline styles, hence style-src)
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'"


class ReviewState:
    """The run's candidates (read once) and its decisions (re-read on every request: other tools may append)."""

    def __init__(self, run_dir: str | Path, reviewer: str):
        self.data: ReviewData = load_review_data(run_dir)
        self.reviewer = reviewer
        self.decisions_file = decisions_path(run_dir)
        self.log = DecisionLog(self.decisions_file, reviewer=reviewer)

    def decisions(self) -> tuple[dict[str, dict], list[BrokenLine]]:
        folded, broken = load_decisions_tolerant(self.decisions_file)
        return {pid: d.to_json() for pid, d in folded.items()}, broken

    def problems_payload(self) -> dict[str, Any]:
        decisions, broken = self.decisions()
        rows = [self.data.summary(pid, decisions.get(pid)) for pid in self.data.problem_ids]
        reviewed = sum(1 for r in rows if r["decision"] and r["decision"]["action"] in ("accept", "reject"))
        facets = {
            key: sorted({r[key] for r in rows if r[key] is not None}, key=lambda v: (str(type(v)), v))
            for key in ("subject", "level", "difficulty_tier", "quality_level")
        }
        unknown = sorted(set(decisions) - set(self.data.problems))
        return {
            "run": str(self.data.run_dir),
            "reviewer": self.reviewer,
            "decisions_file": str(self.decisions_file),
            "total": len(rows),
            "reviewed": reviewed,
            "facets": facets,
            "problems": rows,
            "broken_lines": [{"path": b.path, "line": b.line, "message": b.message, "text": b.text} for b in broken],
            "unknown_problems": unknown,
            "warnings": self.data.warnings,
        }

    def problem_payload(self, problem_id: str) -> dict[str, Any] | None:
        if problem_id not in self.data.problems:
            return None
        decisions, _ = self.decisions()
        ids = self.data.problem_ids
        payload = self.data.detail(problem_id, decisions.get(problem_id))
        payload["position"] = ids.index(problem_id) + 1
        payload["total"] = len(ids)
        return payload

    def decide(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise InputError("expected a JSON object", field="body")
        for name in ("problem_id", "action", "candidate_id", "note"):
            if body.get(name) is not None and not isinstance(body[name], str):
                raise InputError(f"expected a string, got {type(body[name]).__name__}", field=name)
        problem_id = body.get("problem_id")
        if problem_id not in self.data.problems:
            raise InputError(f"unknown problem {problem_id!r}", field="problem_id")
        action = body.get("action")
        candidate_id = body.get("candidate_id")
        if action == "accept" and candidate_id not in self.data.candidate_ids(problem_id):
            raise InputError(f"problem {problem_id!r} has no candidate {candidate_id!r}", field="candidate_id")
        if action != "accept":
            candidate_id = None
        line = self.log.append(problem_id, action, candidate_id=candidate_id, note=body.get("note") or None)
        decisions, _ = self.decisions()
        return {"saved": line.to_json(), "decision": decisions.get(problem_id)}


class ReviewServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: ReviewState, port: int = 0, socket_timeout_s: float = SOCKET_TIMEOUT_S):
        self.state = state
        self.socket_timeout_s = socket_timeout_s
        super().__init__((HOST, port), ReviewHandler)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up or stalls is not our bug: no traceback. Anything else is (default handling)."""
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class ReviewHandler(BaseHTTPRequestHandler):
    server: ReviewServer
    server_version = "limo-review"

    @property
    def timeout(self) -> float:  # socketserver sets it on the connection: every read has a deadline
        return self.server.socket_timeout_s

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the terminal shows decisions, not GETs
        return

    def _origins(self) -> set[str]:
        """host:port names of this server (a browser leaves the port out only for port 80)."""
        port = self.server.server_address[1]
        return {f"{host}:{port}" for host in (HOST, "localhost")} | ({HOST, "localhost"} if port == 80 else set())

    def _guard(self) -> bool:
        """Refuse malformed headers (400), other Host names (DNS rebinding) and other Origins (cross-site requests)
        (403); False when refused."""
        if self.headers.defects:
            self._error(HTTPStatus.BAD_REQUEST, "malformed request headers")
            return False
        if (self.headers.get("Host") or "").lower() not in self._origins():
            self._error(HTTPStatus.FORBIDDEN, "unexpected Host header")
            return False
        origin = self.headers.get("Origin")
        if origin is not None and origin.lower() not in {f"http://{o}" for o in self._origins()}:
            self._error(HTTPStatus.FORBIDDEN, "requests from other origins are refused")
            return False
        return True

    def _refuse_method(self) -> None:
        self._error(HTTPStatus.METHOD_NOT_ALLOWED, "only GET and POST /api/decision")

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method  # noqa: N815 (http.server API)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CSP)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        if not self._guard():
            return
        path = urlsplit(self.path).path
        state = self.server.state
        try:
            if path in ("/", "/index.html"):
                return self._static("index.html")
            if path.startswith("/static/"):
                return self._static(unquote(path[len("/static/") :]))
            if path == "/api/problems":
                return self._json(HTTPStatus.OK, state.problems_payload())
            if path.startswith("/api/problem/"):
                problem_id = unquote(path[len("/api/problem/") :])
                payload = state.problem_payload(problem_id)
                if payload is None:
                    return self._error(HTTPStatus.NOT_FOUND, f"unknown problem {problem_id!r}")
                return self._json(HTTPStatus.OK, payload)
            return self._error(HTTPStatus.NOT_FOUND, f"not found: {path}")
        except LimoError as e:
            return self._error(HTTPStatus.INTERNAL_SERVER_ERROR, str(e))

    def do_POST(self) -> None:  # noqa: N802
        if not self._guard():
            return
        if urlsplit(self.path).path != "/api/decision":
            return self._error(HTTPStatus.NOT_FOUND, "POST only to /api/decision")
        if not _is_json_content_type(self.headers.get("Content-Type")):
            return self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send Content-Type: application/json")
        raw_length = (self.headers.get("Content-Length") or "").strip()
        if not raw_length.isdigit() or not 0 < int(raw_length) <= MAX_BODY:
            return self._error(HTTPStatus.BAD_REQUEST, f"Content-Length must be 1..{MAX_BODY} bytes")
        length = int(raw_length)
        try:
            raw = self.rfile.read(length)
        except TimeoutError:
            raw = b""
        if len(raw) != length:
            self.close_connection = True
            return self._error(HTTPStatus.BAD_REQUEST, f"body shorter than Content-Length ({len(raw)} < {length})")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            return self._error(HTTPStatus.BAD_REQUEST, f"body is not JSON ({e})")
        try:
            result = self.server.state.decide(body)
        except InputError as e:
            return self._error(HTTPStatus.BAD_REQUEST, str(e))
        except OSError as e:  # disk full, read-only run: the page must not think it was saved
            return self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"could not save the decision: {e}")
        saved = result["saved"]
        from limo.console import console

        what = f"{saved['action']} {saved['candidate_id'] or ''}".strip()
        console.print(f"[green]saved[/green] {saved['problem_id']}: {what}" + (" (+note)" if saved["note"] else ""))
        return self._json(HTTPStatus.OK, result)

    def _static(self, relative: str) -> None:
        target = (STATIC_DIR / relative).resolve()
        if STATIC_DIR.resolve() not in target.parents or not target.is_file():
            return self._error(HTTPStatus.NOT_FOUND, f"no static file {relative!r}")
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if target.suffix == ".woff2":
            ctype = "font/woff2"
        if ctype.startswith("text/") or ctype in ("application/javascript",):
            ctype += "; charset=utf-8"
        return self._send(HTTPStatus.OK, target.read_bytes(), ctype)


def _is_json_content_type(value: str | None) -> bool:
    """Exactly application/json, optionally with charset=utf-8 (no prefix match: application/jsonx is refused)."""
    if not value:
        return False
    header = Message()
    header["Content-Type"] = value
    charset = header.get_param("charset")
    return (
        header.get_content_type() == "application/json"
        and charset in (None, "utf-8", "UTF-8")
        and (value.split(";", 1)[0].strip().lower() == "application/json")
    )


def make_server(
    run_dir: str | Path, port: int = 0, reviewer: str = "", socket_timeout_s: float = SOCKET_TIMEOUT_S
) -> ReviewServer:
    """A bound (not yet serving) server on 127.0.0.1; port 0 picks a free port. Raises LimoError for bad runs."""
    state = ReviewState(run_dir, reviewer)
    try:
        return ReviewServer(state, port, socket_timeout_s)
    except OSError as e:
        raise LimoError(f"cannot listen on {HOST}:{port} ({e.strerror}); try another --port") from e


def start_in_thread(server: ReviewServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="limo-review", daemon=True)
    thread.start()
    return thread


def serve(run_dir: str | Path, port: int = 8765, reviewer: str = "") -> None:
    """Serve until Ctrl-C, with a one-screen summary of the run and any unreadable decision lines."""
    from limo.console import console, kv_table

    server = make_server(run_dir, port, reviewer)
    payload = server.state.problems_payload()
    console.print(
        kv_table(
            "limo review",
            {
                "run": payload["run"],
                "problems": payload["total"],
                "candidates": sum(len(c) for c in server.state.data.candidates.values()),
                "reviewed": f"{payload['reviewed']} / {payload['total']}",
                "decisions": payload["decisions_file"],
                "reviewer": reviewer or "(anonymous)",
                "open": server.url,
            },
        )
    )
    for warning in payload["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    for broken in payload["broken_lines"]:
        console.print(f"[yellow]warning:[/yellow] unreadable line skipped (kept in the file): {broken['message']}")
    console.print("Press Ctrl-C to stop. Decisions are saved as you make them.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        console.print("stopped.")
    finally:
        server.server_close()
