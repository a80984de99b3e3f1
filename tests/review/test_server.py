"""The review server's JSON API over a real (small) scored run, its guards, and runs without candidates."""

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import quote

import pytest

from limo.errors import InputError, LimoError
from limo.review.data import load_review_data
from limo.review.decisions import DecisionLog, decisions_path, load_decisions
from limo.review.server import make_server, start_in_thread

LIMO = [sys.executable, "-m", "limo.cli"]


@pytest.fixture
def server(review_run):
    srv = make_server(review_run, port=0, reviewer="tester")
    start_in_thread(srv)
    yield srv
    srv.shutdown()
    srv.server_close()


def call(srv, path, body=None, headers=None, method=None):
    """(status, decoded JSON or raw bytes, headers) for one request to the test server."""
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    hdrs = {"Content-Type": "application/json"} if data is not None else {}
    hdrs.update(headers or {})
    req = urllib.request.Request(srv.url.rstrip("/") + path, data=data, headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            status, raw, rh = res.status, res.read(), res.headers
    except urllib.error.HTTPError as e:
        status, raw, rh = e.code, e.read(), e.headers
    if (rh.get("Content-Type") or "").startswith("application/json"):
        return status, json.loads(raw), rh
    return status, raw, rh


def test_binds_loopback_only(server):
    assert server.server_address[0] == "127.0.0.1"
    assert server.url.startswith("http://127.0.0.1:")


def test_problem_list(server):
    status, body, _ = call(server, "/api/problems")
    assert status == 200
    assert body["total"] == 4 and body["reviewed"] == 0 and body["broken_lines"] == []
    assert [p["n_candidates"] for p in body["problems"]] == [3, 3, 2, 2]
    assert body["facets"]["subject"] == ["Algebra", "Intermediate Algebra", "Number Theory", "Precalculus"]
    assert body["facets"]["difficulty_tier"] == ["hard", "medium"]
    assert all(1 <= p["quality_level"] <= 5 for p in body["problems"])
    assert all(p["decision"] is None for p in body["problems"])


def test_problem_detail_has_candidates_features_and_evidence(server):
    pid = "test/precalculus/807.json"
    status, body, _ = call(server, f"/api/problem/{quote(pid, safe='')}")
    assert status == 200
    assert body["problem"]["id"] == pid and body["problem"]["answer"] == "\\left( 3, \\frac{\\pi}{2} \\right)"
    cands = body["candidates"]
    assert [c["index"] for c in cands] == [1, 2, 3]
    scores = [c["quality_score"] for c in cands]
    assert scores == sorted(scores, reverse=True)  # best first
    split = next(c for c in cands if c["has_reasoning"])
    assert split["text"].startswith("<think>\n")  # the evidence spans index the scored assistant text
    for c in cands:
        assert set(c["features"]) >= {"self_verification", "exploration", "elaboration", "truncation"}
        assert c["candidate_model"] and c["completion_tokens"] > 0
        for spans in c["evidence"].values():
            assert all(0 <= s < e <= len(c["text"]) for s, e in spans)
    sky = next(c for c in cands if c["candidate_model"] == "sky-t1-27b")
    passages = [sky["text"][s:e].lower() for s, e in sky["evidence"]["self_verification"]]
    assert passages and any(re.search(r"check|verif|confirm|make sure|wait", p) for p in passages)


def test_decisions_via_api(server, review_run):
    pid = "test/intermediate_algebra/1994.json"
    _, detail, _ = call(server, f"/api/problem/{quote(pid, safe='')}")
    second = detail["candidates"][1]["candidate_id"]
    status, body, _ = call(server, "/api/decision", {"problem_id": pid, "action": "accept", "candidate_id": second})
    assert status == 200 and body["decision"]["candidate_id"] == second
    assert call(server, "/api/decision", {"problem_id": pid, "action": "annotate", "note": "clean"})[0] == 200
    status, body, _ = call(server, "/api/problems")
    row = next(p for p in body["problems"] if p["id"] == pid)
    assert body["reviewed"] == 1 and row["accepted_index"] == 2 and row["decision"]["notes"][0]["text"] == "clean"
    saved = load_decisions(decisions_path(review_run))[pid]
    assert saved.candidate_id == second and saved.reviewer == "tester"

    size = decisions_path(review_run).stat().st_size
    bad = [
        ({"problem_id": pid, "action": "accept", "candidate_id": "nope"}, 400, "no candidate"),
        ({"problem_id": "ghost", "action": "reject"}, 400, "unknown problem"),
        ({"problem_id": pid, "action": "approve"}, 400, "action"),
        ({"problem_id": pid, "action": "annotate", "note": ""}, 400, "note"),
    ]
    for payload, code, words in bad:
        status, body, _ = call(server, "/api/decision", payload)
        assert status == code and words in body["error"], (payload, body)
    assert call(server, "/api/decision", b"{not json")[0] == 400
    assert call(server, "/api/decision", b"{}", headers={"Content-Type": "text/plain"})[0] == 415
    assert decisions_path(review_run).stat().st_size == size  # refused requests wrote nothing


def test_guards_and_static(server):
    assert call(server, "/api/problems")[1]["warnings"] == []
    assert call(server, "/api/problem/ghost")[0] == 404
    assert call(server, "/api/problems", headers={"Host": "evil.example:80"})[0] == 403
    assert call(server, "/static/../server.py")[0] == 404
    assert call(server, "/static/%2e%2e/server.py")[0] == 404
    status, raw, headers = call(server, "/")
    assert status == 200 and b"/static/katex/katex.min.js" in raw and b"cdn" not in raw.lower()
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    status, raw, headers = call(server, "/static/katex/fonts/KaTeX_Main-Regular.woff2")
    assert status == 200 and headers["Content-Type"] == "font/woff2" and raw[:4] == b"wOF2"


def test_broken_decision_line_is_reported_and_nothing_lost(review_run):
    path = decisions_path(review_run)
    log = DecisionLog(path, reviewer="ann")
    log.append("test/algebra/2584.json", "reject", ts=1.0)
    with path.open("a") as f:
        f.write('{"problem_id": "test/number_theory/864.json", "action": "accept", "candidate_id": \n')
    srv = make_server(review_run, port=0, reviewer="tester")
    start_in_thread(srv)
    try:
        status, body, _ = call(srv, "/api/problems")
        assert status == 200 and body["reviewed"] == 1
        assert [(b["line"], "malformed JSON" in b["message"]) for b in body["broken_lines"]] == [(2, True)]
        pid = "test/number_theory/864.json"
        _, detail, _ = call(srv, f"/api/problem/{quote(pid, safe='')}")
        cid = detail["candidates"][0]["candidate_id"]
        assert call(srv, "/api/decision", {"problem_id": pid, "action": "accept", "candidate_id": cid})[0] == 200
    finally:
        srv.shutdown()
        srv.server_close()
    text = path.read_text()
    assert '"candidate_id": \n' in text  # the broken line is still there for a human to fix
    with pytest.raises(InputError, match=r"decisions.jsonl, line 2: malformed JSON"):
        load_decisions(path)  # and `limo curate` (select) stops with the file and line, instead of guessing


def test_run_without_candidates(tmp_path, review_run):
    with pytest.raises(LimoError, match="run directory not found"):
        load_review_data(tmp_path / "missing")
    (tmp_path / "bare").mkdir()
    with pytest.raises(LimoError, match=r"no candidates to review yet .*08_score/data.parquet not found"):
        load_review_data(tmp_path / "bare")
    import pyarrow.parquet as pq

    table = pq.read_table(review_run / "08_score" / "data.parquet")
    (tmp_path / "empty" / "08_score").mkdir(parents=True)
    pq.write_table(table.slice(0, 0), tmp_path / "empty" / "08_score" / "data.parquet")
    with pytest.raises(LimoError, match="0 candidates"):
        load_review_data(tmp_path / "empty")
    (tmp_path / "nocol" / "08_score").mkdir(parents=True)
    pq.write_table(table.drop(["candidate_id"]), tmp_path / "nocol" / "08_score" / "data.parquet")
    with pytest.raises(InputError, match="field 'candidate_id'"):
        load_review_data(tmp_path / "nocol")
    (review_run / "08_score" / "done").unlink()  # an interrupted score stage: shown, with a warning
    assert "no done marker" in load_review_data(review_run).warnings[0]
    proc = subprocess.run([*LIMO, "review", str(tmp_path / "bare"), "--port", "0"], capture_output=True, text=True)
    assert proc.returncode == 2 and "no candidates to review yet" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_limo_review_command_serves_the_run(review_run, tmp_path):
    """The real command: starts, warns about a broken decision line, prints its 127.0.0.1 URL, answers the API,
    stops on Ctrl-C."""
    decisions = decisions_path(review_run)
    decisions.parent.mkdir(parents=True)
    complete = '{"problem_id": "test/algebra/2584.json", "action": "reject", "reviewer": "a", "ts": 1}\n'
    decisions.write_text(complete + '{"pro')
    log = tmp_path / "server.log"
    with log.open("w") as out:
        cmd = [*LIMO, "review", str(review_run), "--port", "0", "--reviewer", "cli"]
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "400"})
    try:
        url = None
        for _ in range(600):
            found = re.search(r"http://127\.0\.0\.1:\d+/", log.read_text())
            if found:
                url = found.group(0)
                break
            assert proc.poll() is None, log.read_text()
            time.sleep(0.1)
        assert url, log.read_text()
        with urllib.request.urlopen(url + "api/problems", timeout=30) as res:
            body = json.loads(res.read())
        assert body["total"] == 4 and body["reviewer"] == "cli" and body["reviewed"] == 1
    finally:
        proc.send_signal(2)
        proc.wait(timeout=30)
    text = " ".join(log.read_text().split())
    assert "unreadable line skipped (kept in the file)" in text and "decisions.jsonl, line 2" in text
    assert decisions.read_text().endswith('{"pro')  # untouched


def raw_request(srv, data: bytes, *, shutdown_write: bool = False) -> bytes:
    """Send raw bytes to the server and read the whole answer (the socket's own timeout guards the test)."""
    import socket

    with socket.create_connection(srv.server_address, timeout=60) as sock:
        sock.sendall(data)
        if shutdown_write:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _post(srv, body: bytes, content_type: str = "application/json", extra: str = "", length: int | None = None):
    host = f"127.0.0.1:{srv.server_address[1]}"
    head = (
        f"POST /api/decision HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\nConnection: close\r\n{extra}\r\n"
    )
    return raw_request(srv, head.encode() + body)


@pytest.fixture
def quick_server(review_run):
    srv = make_server(review_run, port=0, reviewer="tester", socket_timeout_s=0.5)
    start_in_thread(srv)
    yield srv
    srv.shutdown()
    srv.server_close()


def test_exact_content_type_origin_and_host(quick_server, review_run):
    srv, port = quick_server, quick_server.server_address[1]
    ok = json.dumps({"problem_id": "test/algebra/2584.json", "action": "reject"}).encode()
    assert _status(_post(srv, ok, "application/jsonx")) == 415  # no prefix match
    assert _status(_post(srv, ok, "text/plain")) == 415
    assert _status(_post(srv, ok, "application/json; charset=latin-1")) == 415
    assert _status(_post(srv, ok, "application/json", f"Origin: http://evil.example:{port}\r\n")) == 403
    assert _status(_post(srv, ok, "application/json", "Origin: null\r\n")) == 403
    assert call(srv, "/api/problems", headers={"Host": "127.0.0.1:1"})[0] == 403  # right name, wrong port
    assert call(srv, "/api/problems", headers={"Origin": "http://localhost.evil:80"})[0] == 403
    assert load_decisions(decisions_path(review_run)) == {}  # nothing refused was written
    same_origin = f"Origin: http://127.0.0.1:{port}\r\n"
    assert _status(_post(srv, ok, "application/json; charset=utf-8", same_origin)) == 200
    assert load_decisions(decisions_path(review_run))["test/algebra/2584.json"].action == "reject"


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /a b HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nbad header line without colon\r\n\r\n",
        b"POST /api/decision HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        b"Content-Length: abc\r\n\r\n{}",
        b"POST /api/decision HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        b"Content-Length: -5\r\n\r\n{}",
        b"POST /api/decision HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\r\n",
    ],
    ids=["request-line", "header-line", "length-not-a-number", "length-negative", "no-length"],
)
def test_malformed_requests_get_400_and_no_traceback(quick_server, request_bytes, capfd):
    answer = raw_request(quick_server, request_bytes.replace(b"{port}", str(quick_server.server_address[1]).encode()))
    assert _status(answer) == 400, answer[:200]
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize(
    "body",
    [b"[1, 2]", b"\xff\xfe", b'{"problem_id": ["a"], "action": "reject"}', b'{"problem_id": "x", "action": 5}'],
    ids=["array", "not-utf8", "id-is-a-list", "action-is-a-number"],
)
def test_bad_bodies_get_400(quick_server, body, capfd):
    assert _status(_post(quick_server, body)) == 400
    assert "Traceback" not in capfd.readouterr().err


def test_a_short_body_is_answered_not_hung(quick_server, capfd):
    """Content-Length promises 100 bytes, 10 arrive and the client waits: the socket timeout ends the read."""
    answer = _post(quick_server, b'{"problem', length=100)
    assert _status(answer) == 400 and b"shorter than Content-Length" in answer
    assert "Traceback" not in capfd.readouterr().err
    assert call(quick_server, "/api/problems")[0] == 200  # the server still answers


def test_other_methods_are_refused(quick_server):
    assert call(quick_server, "/api/decision", body=b"{}", method="PUT")[0] == 405
    assert call(quick_server, "/api/problems", method="DELETE")[0] == 405
