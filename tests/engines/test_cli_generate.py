"""`limo generate` on bad input: clear one-line errors (file, line, field; known aliases; server down), exit code 2.

.venv/bin/pytest tests/engines/test_cli_generate.py
"""

import json
import os
import subprocess
import sys

from llama_helpers import free_port


def limo(*args: str) -> tuple[int, str]:
    env = {**os.environ, "COLUMNS": "400", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "limo.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )
    return proc.returncode, " ".join((proc.stdout + proc.stderr).split())


def prompts_file(tmp_path, lines: list[str]):
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    return path


GOOD = json.dumps({"id": "a", "prompt": "What is 2+2?"})


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    path = prompts_file(tmp_path, [GOOD, '{"id": "b", "prompt": "unterminated', GOOD])
    code, out = limo(
        "generate", "--input", str(path), "--out", str(tmp_path / "o.jsonl"), "--cache", str(tmp_path / "c")
    )
    assert code == 2
    assert str(path) in out and "line 2" in out
    assert "Traceback" not in out
    assert not (tmp_path / "o.jsonl").exists()


def test_missing_prompt_field_names_the_field(tmp_path):
    path = prompts_file(tmp_path, [GOOD, GOOD, json.dumps({"id": "c", "text": "no prompt here"})])
    code, out = limo(
        "generate", "--input", str(path), "--out", str(tmp_path / "o.jsonl"), "--cache", str(tmp_path / "c")
    )
    assert code == 2
    assert str(path) in out and "line 3" in out and "'prompt'" in out


def test_unknown_model_alias_lists_known_aliases(tmp_path):
    path = prompts_file(tmp_path, [GOOD])
    code, out = limo(
        "generate", "--input", str(path), "--out", str(tmp_path / "o.jsonl"), "--cache", str(tmp_path / "c"),
        "--model", "smollm-9000",
    )  # fmt: skip
    assert code == 2
    assert "unknown model 'smollm-9000'" in out and "Known aliases" in out and "smollm2-135m" in out
    assert "Traceback" not in out


def test_server_down_gives_clear_message(tmp_path):
    path = prompts_file(tmp_path, [GOOD])
    url = f"http://127.0.0.1:{free_port()}/v1"
    code, out = limo(
        "generate", "--input", str(path), "--out", str(tmp_path / "o.jsonl"), "--cache", str(tmp_path / "c"),
        "--engine", "openai", "--base-url", url, "--max-retries", "2",
    )  # fmt: skip
    assert code == 2
    assert "Traceback" not in out
    assert f"{url}/chat/completions failed after 3 attempts" in out
    assert "connection error" in out and "is the server running" in out
