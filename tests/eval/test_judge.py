"""The model judge: prompt and verdict parse; the blend with rule verdicts in a real `run_eval` against a small local
HTTP server that answers fixed verdicts (judged-correct, judged-incorrect, unparsable); an unreachable judge; and
(slow) the llama.cpp server serving the embedded model as the judge.

.venv/bin/pytest tests/eval/test_judge.py
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from limo.engines.base import EngineConfig
from limo.errors import LimoError
from limo.eval import benchmarks
from limo.eval.judge import JUDGE_SYSTEM, is_mathematical, judge_messages, needs_judge, parse_verdict
from limo.eval.run import EvalConfig, run_eval

sys.path.insert(0, str(Path(__file__).parents[1] / "engines"))  # llama_helpers: free ports, the llama.cpp server


@pytest.mark.parametrize(
    "reply, verdict",
    [
        ("## Analysis\nSame set.\n\n## Correctness\nCORRECT", "correct"),
        ("## Analysis\nDifferent.\n\n## Correctness\nWRONG", "incorrect"),
        ("## Correctness\nINCORRECT", "incorrect"),  # the authors' `"correct" in text` would say correct here
        ("## Analysis\nThe student is not correct.\n## Correctness\nWRONG", "incorrect"),  # section wins
        ("Correctness: correct", "correct"),
        ("I cannot decide.", None),
        ("CORRECT or WRONG, hard to say", None),
        ("", None),
    ],
)
def test_parse_verdict(reply, verdict):
    assert parse_verdict(reply) == verdict


def test_which_golds_go_to_the_judge():
    assert not is_mathematical("苹果比梨多3个") and not is_mathematical("the second one is larger")
    assert is_mathematical("\\frac{3}{4}") and is_mathematical("x \\in [1, 2]") and is_mathematical("5 cm")
    assert needs_judge("苹果", "incorrect", spec_judge=True) and not needs_judge("苹果", "incorrect", spec_judge=False)
    assert needs_judge("5", "timeout", spec_judge=False) and not needs_judge("5", "incorrect", spec_judge=True)
    msgs = judge_messages("Q?", "gold", "x" * 5000)
    assert msgs[0]["content"] == JUDGE_SYSTEM and "Standard Answer: gold" in msgs[1]["content"]
    assert len(msgs[1]["content"]) < 2200  # only the end of a long response


# ------------------------------------------------------------------------- a local server with fixed replies
PROBLEMS = [  # (problem, gold, what the "model" answers, what the "judge" says)
    ("比较两个数 A", "苹果比梨多", "So the answer is right-answer.", "## Analysis\nsame\n## Correctness\nCORRECT"),
    ("比较两个数 B", "三角形", "So the answer is wrong-answer.", "## Analysis\ndiffers\n## Correctness\nWRONG"),
    ("比较两个数 C", "正方形", "So the answer is garbled.", "I refuse to grade this."),
    ("What is 2+3?", "5", "Thus \\boxed{5}", None),  # mathematical gold: the rule grader decides, no judge
]


class FixedReplies(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
        if system == JUDGE_SYSTEM:
            self.server.judge_calls += 1
            text = next(j for p, g, a, j in PROBLEMS if f"Standard Answer: {g}\n" in user)
        else:
            text = next(a for p, g, a, j in PROBLEMS if user == p)
        reply = {"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                 "usage": {"prompt_tokens": 10, "completion_tokens": 5}}  # fmt: skip
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def fixed_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FixedReplies)
    server.judge_calls = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture
def text_benchmark(tmp_path, monkeypatch):
    path = tmp_path / "textbench.jsonl"
    path.write_text("".join(json.dumps({"id": f"t{i}", "problem": p, "answer": g}, ensure_ascii=False) + "\n"
                            for i, (p, g, _, _) in enumerate(PROBLEMS)))  # fmt: skip
    monkeypatch.setitem(
        benchmarks.BENCHMARKS, "textbench", benchmarks.BenchmarkSpec("textbench", file=str(path), judge=True)
    )
    return "textbench"


def _config(url: str, tmp_path, judge_url: str | None = None, **judge_kw) -> EvalConfig:
    engine = EngineConfig(model="fixed", engine="openai", base_url=url, max_retries=1, backoff_s=0.01)
    judge = EngineConfig(model="fixed-judge", engine="openai", base_url=judge_url or url, **judge_kw)
    return EvalConfig(model="fixed", engine=engine, benchmarks=["textbench"], judge="fixed-judge",
                      judge_engine=judge, cache=str(tmp_path / "gen.sqlite"), grade_workers=1)  # fmt: skip


def test_judge_decides_text_golds_and_the_blend_is_reported(fixed_server, text_benchmark, tmp_path):
    url = f"http://127.0.0.1:{fixed_server.server_address[1]}/v1"
    results = run_eval(_config(url, tmp_path), tmp_path / "ev")
    samples = {s["problem_id"]: s for s in map(json.loads, (tmp_path / "ev" / "samples.jsonl").open())}
    assert fixed_server.judge_calls == 3  # the three text golds, not the numeric one
    a, b, c, d = (samples[f"t{i}"] for i in range(4))
    assert a["judged"] and a["judge_verdict"] == "correct" and a["correct"] and a["rule_verdict"] != "correct"
    assert b["judged"] and b["judge_verdict"] == "incorrect" and not b["correct"]
    assert not c["judged"] and c["judge_verdict"] == "unparsable" and c["judge_reply"] == "I refuse to grade this."
    assert c["verdict"] == c["rule_verdict"] and not c["correct"]
    assert not d["judged"] and "judge_reply" not in d and d["correct"]
    j = results["benchmarks"]["textbench"]["judge"]
    assert (j["judged"], j["unparsable"], j["judged_share"]) == (2, 1, 0.5)
    assert j["score_with_judged"] == 0.5  # a (judge) + d (rule) of 4
    assert j["score_rule_only"] == 0.25  # d only
    assert j["score_excluding_judged"] == 0.5  # c and d
    assert results["benchmarks"]["textbench"]["score"]["value"] == 0.5
    assert "judged rows" in (tmp_path / "ev" / "results.md").read_text()


def test_unreachable_judge_is_one_clear_error_and_nothing_is_marked(fixed_server, text_benchmark, tmp_path):
    from llama_helpers import free_port

    url = f"http://127.0.0.1:{fixed_server.server_address[1]}/v1"
    dead = f"http://127.0.0.1:{free_port()}/v1"
    cfg = _config(url, tmp_path, judge_url=dead, max_retries=2, backoff_s=0.01, timeout_s=2.0)
    with pytest.raises(
        LimoError, match=r"judge 'fixed-judge' at http://127.0.0.1:\d+/v1 failed after 2 tries.*no rows"
    ):
        run_eval(cfg, tmp_path / "ev")
    assert not (tmp_path / "ev" / "samples.jsonl").exists()


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_embedded_model_as_judge_through_llama_cpp_server(fixed_server, text_benchmark, tmp_path):
    from llama_helpers import LlamaServer, free_port

    server = LlamaServer(free_port(), tmp_path / "llama.log").start()
    try:
        url = f"http://127.0.0.1:{fixed_server.server_address[1]}/v1"
        cfg = _config(url, tmp_path, judge_url=server.base_url)
        cfg.judge_max_tokens = 48
        results = run_eval(cfg, tmp_path / "ev")
    finally:
        server.kill()
    samples = [json.loads(line) for line in (tmp_path / "ev" / "samples.jsonl").open()]
    asked = [s for s in samples if "judge_reply" in s]
    assert len(asked) == 3 and all(isinstance(s["judge_reply"], str) and s["judge_reply"] for s in asked)
    assert all(s["judge_verdict"] in ("correct", "incorrect", "unparsable") for s in asked)
    assert all(s["judged"] == (s["judge_verdict"] != "unparsable") for s in asked)
    j = results["benchmarks"]["textbench"]["judge"]
    assert j["judged"] == sum(s["judged"] for s in samples) and j["unparsable"] + j["judged"] == 3
