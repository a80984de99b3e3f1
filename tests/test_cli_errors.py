"""Every command, every class of bad input: exit code 2 and exactly one line that names the file, line, field or
flag. Run in-process through limo.cli.main (the console script's entry point), plus a few rows as real
subprocesses. A traceback here means our bug, so a row that prints one fails.

Classes of bad input: a missing file, a directory where a file was expected, binary or non-UTF-8 bytes, a bad
Parquet file, malformed JSON, a wrong field type (integer chat content), a bad recipe value, a broken `--set`,
out-of-range flags, an unknown engine, an output path that is a directory / a file / not writable, a corrupt cache,
an unreachable server.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from limo.cli import main
from limo.paths import REPO_ROOT


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def bad(tmp_path):
    """Paths of bad inputs, by name (used as {name} in the table below)."""
    paths = {"tmp": tmp_path, "dir": tmp_path / "adir", "missing": tmp_path / "missing.jsonl"}
    paths["dir"].mkdir()
    paths["binary"] = tmp_path / "binary.jsonl"
    paths["binary"].write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    paths["nul"] = tmp_path / "nul.jsonl"
    paths["nul"].write_bytes(b'{"response": "\x00"}\n')
    paths["latin1"] = tmp_path / "latin1.jsonl"
    paths["latin1"].write_bytes('{"prompt": "caf\u00e9"}\n'.encode("latin-1"))
    paths["malformed"] = tmp_path / "malformed.jsonl"
    paths["malformed"].write_text('{"prompt": "a"}\n{"prompt": \n')
    paths["int_content"] = tmp_path / "int_content.jsonl"
    paths["int_content"].write_text(json.dumps({"messages": [{"role": "user", "content": 5}]}) + "\n")
    paths["bad_parquet"] = tmp_path / "bad.parquet"
    paths["bad_parquet"].write_bytes(b"PAR1 this is not parquet PAR1")
    paths["file"] = tmp_path / "a_file.txt"
    paths["file"].write_text("x\n")
    paths["in_file"] = tmp_path / "a_file.txt" / "out.jsonl"  # a path under a file: nothing can be created there
    paths["bad_recipe"] = tmp_path / "bad_recipe.yaml"
    paths["bad_recipe"].write_text("pool: {sources: [{name: d, path: x.jsonl}]}\ndedup: {threshold: high}\n")
    paths["bad_yaml"] = tmp_path / "bad_yaml.yaml"
    paths["bad_yaml"].write_text("pool:\n  sources: [1,\n")
    paths["binary_yaml"] = tmp_path / "binary.yaml"
    paths["binary_yaml"].write_bytes(b"pool: \xff\xfe\x00\n")
    paths["corrupt_cache"] = tmp_path / "corrupt.sqlite"
    paths["corrupt_cache"].write_bytes(b"SQLite format 3\x00" + os.urandom(4096))
    paths["prompts"] = tmp_path / "prompts.jsonl"
    paths["prompts"].write_text(json.dumps({"prompt": "What is 2+2?"}) + "\n")
    paths["graded"] = tmp_path / "graded.jsonl"
    paths["graded"].write_text(json.dumps({"response": "\\boxed{4}", "answer": "4"}) + "\n")
    ro = tmp_path / "readonly"
    ro.mkdir()
    ro.chmod(0o555)
    # root writes through file modes; /proc/self is not writable even for root
    paths["ro"] = ro if os.geteuid() != 0 else "/proc/self"
    paths["binary_run"] = tmp_path / "binary_run"  # an eval output dir whose results.json is binary
    paths["binary_run"].mkdir()
    (paths["binary_run"] / "results.json").write_bytes(b"\x89PNG\r\n\x1a\n")
    (paths["binary_run"] / "samples.jsonl").write_text("")
    paths["port"] = _closed_port()
    paths["demo"] = REPO_ROOT / "recipes" / "demo.yaml"
    paths["train_recipe"] = REPO_ROOT / "recipes" / "smollm2-135m-cpu.yaml"
    paths["grid"] = REPO_ROOT / "recipes" / "ablations" / "quality-v3.yaml"
    for name in ("binary", "missing"):  # no spaces: the table splits argv on spaces
        paths[f"pool_{name}"] = json.dumps([{"name": "d", "path": str(paths[name])}], separators=(",", ":"))
        paths[f"pool_{name}"] = f"pool.sources={paths[f'pool_{name}']}"
    yield paths
    ro.chmod(0o755)


# [row id, argv with {placeholders}, text the one error line must contain]: one row per command x class of bad input
ROWS = [tuple(row) for row in yaml.safe_load((REPO_ROOT / "tests" / "data" / "cli_bad_inputs.yaml").read_text())]

# rows whose command prints its normal output before it meets the bad input: the error is still one line, the last
PRIOR_OUTPUT = {
    "train-data-binary": "train prints its memory plan before it reads the data",
    "train-data-dir": "train prints its memory plan before it reads the data",
    "cache-check-binary": "cache check prints its report, then the verdict",
}

COMMANDS = {
    "generate",
    "grade",
    "eval",
    "compare",
    "curate",
    "train",
    "run",
    "experiment",
    "review",
    "cache",
    "doctor",
}


def _argv(template: str, bad: dict) -> list[str]:
    return [part.format(**bad) for part in template.split()]


def test_the_table_covers_every_command():
    import typer

    from limo.cli import app

    registered = set(typer.main.get_command(app).commands)
    assert registered == COMMANDS, f"add rows for {registered - COMMANDS} (and drop {COMMANDS - registered})"
    assert {row[1].split()[0] for row in ROWS} == COMMANDS


SLOW_ROWS = {"eval-unreachable-server": "eval has no --max-retries: about 50 s of retries with backoff"}


def _params():
    for row in ROWS:
        marks = [pytest.mark.slow] if row[0] in SLOW_ROWS else []
        yield pytest.param(*row, id=row[0], marks=marks)


@pytest.mark.parametrize("row_id, template, expected", list(_params()))
def test_bad_input_is_one_line_and_exit_2(row_id, template, expected, bad, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(_argv(template, bad))
    out = capsys.readouterr()
    lines = [line for line in out.err.splitlines() if line.strip()]
    assert exit_info.value.code == 2, f"exit {exit_info.value.code}; stderr:\n{out.err}"
    errors = [line for line in lines if line.startswith("error: ")]
    if row_id not in PRIOR_OUTPUT:
        assert len(lines) == 1, f"not one line:\n{out.err}"
    assert len(errors) == 1 and lines[-1] == errors[0], f"the error is not one last line:\n{out.err}"
    assert "Traceback" not in out.err + out.out
    assert "unexpected extra argument" not in errors[0], "a row's argv was split wrongly"
    assert expected.format(**bad) in errors[0]


def test_debug_shows_the_traceback(bad, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--debug", *_argv("grade {missing}", bad)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("error: ")


@pytest.mark.parametrize(
    "argv",
    [["generate", "-i", "{binary}", "-o", "{tmp}/o.jsonl"], ["eval", "-o", "{tmp}/e", "--top-p", "2"]],
    ids=["generate-binary", "eval-top-p"],
)
def test_console_script_exit_2_one_line(argv, bad):
    """The installed `limo` script (limo.cli:main; python -m limo.cli where it is not installed) behaves the same."""
    script = Path(sys.executable).parent / "limo"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "limo.cli"]
    proc = subprocess.run(
        [*command, *[a.format(**bad) for a in argv]],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "40"},  # a narrow terminal must not wrap the line
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr


def test_existing_outputs_are_named_before_they_are_replaced(bad, capsys):
    from limo.entry import _output_file, _results_dir

    target = bad["tmp"] / "exists.jsonl"
    target.write_text("old\n")
    _output_file(target)
    assert f"{target} exists and will be replaced" in capsys.readouterr().err
    _results_dir(bad["tmp"] / "new-eval-dir")
    assert capsys.readouterr().err == ""  # a new directory: nothing to say
    (bad["dir"] / "results.json").write_text("{}")
    _results_dir(bad["dir"])
    assert f"{bad['dir']} has files from an earlier run" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content, usage, expected",
    [
        ("hi", {"prompt_tokens": "abc", "completion_tokens": 3}, "usage.prompt_tokens is 'abc', not a token count"),
        (5, {"prompt_tokens": 1, "completion_tokens": 3}, "content is int (5), not a string"),
    ],
    ids=["usage-not-a-number", "integer-chat-content"],
)
def test_a_bad_server_reply_is_one_line_and_exit_2(bad, capsys, content, usage, expected):
    from scripted_openai import ScriptedOpenAI, chat_reply

    argv = _argv("generate -i {prompts} -o {tmp}/o.jsonl --engine openai --model m --max-retries 0", bad)
    with ScriptedOpenAI(lambda request: chat_reply(content, usage)) as server:
        with pytest.raises(SystemExit) as exit_info:
            main([*argv, "--base-url", server.base_url, "--cache", str(bad["tmp"] / "c.sqlite")])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert exit_info.value.code == 2 and len(lines) == 1 and lines[0].startswith("error: ")
    assert expected in lines[0]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("content", [b"", b"SQLite format 3\x00" + bytes(4096)], ids=["empty", "zeroed"])
def test_cache_repair_of_a_file_with_no_table_finishes(tmp_path, content):
    """An empty or blank file has no generations table: repair keeps 0 rows at once (it used to probe to 2**40)."""
    path = tmp_path / "cache.sqlite"
    path.write_bytes(content)
    main(["cache", "repair", str(path)])
    assert path.exists() and list(tmp_path.glob("cache.sqlite.damaged-*"))


def test_a_pool_whose_every_row_is_bad_is_counted_not_a_traceback(tmp_path, capsys):
    """Every row's problem has the wrong type: the pool drops them by reason and the later stages see 0 rows (the
    runner used to fail reading the pool's schema-less empty file)."""
    pool = tmp_path / "pool.jsonl"
    pool.write_text('{"problem": 5, "answer": "1"}\n{"problem": ["x"], "answer": "2"}\n')
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"pool": {"sources": [{"name": "d", "path": str(pool)}]}, "difficulty": {}}))
    main(["curate", str(recipe), "-o", str(tmp_path / "run"), "--set", "difficulty.enabled=false"])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary[0]["dropped_by_reason"] == {"problem_not_string": 2}
    assert all(stage["rows_out"] == 0 for stage in summary)
    assert "Traceback" not in capsys.readouterr().err
