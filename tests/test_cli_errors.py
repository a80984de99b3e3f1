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

import pytest

from limo.cli import main
from limo.paths import REPO_ROOT

DEMO = str(REPO_ROOT / "recipes" / "demo.yaml")
TRAIN_RECIPE = str(REPO_ROOT / "recipes" / "smollm2-135m-cpu.yaml")
POOL_SOURCE = 'pool.sources=[{{"name":"d","path":"{%s}"}}]'  # no spaces: the table splits argv on spaces
GRID = str(REPO_ROOT / "recipes" / "ablations" / "quality-v3.yaml")


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
    paths["port"] = _closed_port()
    yield paths
    ro.chmod(0o755)


# (row id, argv with {placeholders}, text the one line must contain)
ROWS = [
    # generate
    ("generate-missing", "generate -i {missing} -o {tmp}/o.jsonl", "missing.jsonl: input file not found"),
    ("generate-dir-input", "generate -i {dir} -o {tmp}/o.jsonl", "adir: is a directory"),
    ("generate-binary", "generate -i {binary} -o {tmp}/o.jsonl", "binary.jsonl, line 1: not UTF-8"),
    ("generate-latin1", "generate -i {latin1} -o {tmp}/o.jsonl", "latin1.jsonl, line 1: not UTF-8"),
    ("generate-malformed", "generate -i {malformed} -o {tmp}/o.jsonl", "malformed.jsonl, line 2: malformed JSON"),
    ("generate-int-content", "generate -i {int_content} -o {tmp}/o.jsonl", "line 1, field 'messages'"),
    ("generate-out-dir", "generate -i {prompts} -o {dir}", "adir: is a directory"),
    ("generate-out-readonly", "generate -i {prompts} -o {ro}/o.jsonl", "not writable"),
    ("generate-out-under-file", "generate -i {prompts} -o {in_file}", "is a file, not a directory"),
    ("generate-engine", "generate -i {prompts} -o {tmp}/o.jsonl --engine foo", "'--engine': unknown engine 'foo'"),
    ("generate-n", "generate -i {prompts} -o {tmp}/o.jsonl --n 0", "'--n': must be >= 1"),
    ("generate-max-tokens", "generate -i {prompts} -o {tmp}/o.jsonl --max-tokens 0", "'--max-tokens': must be >= 1"),
    ("generate-temperature", "generate -i {prompts} -o {tmp}/o.jsonl --temperature -1", "'--temperature'"),
    ("generate-top-p", "generate -i {prompts} -o {tmp}/o.jsonl --top-p 2", "'--top-p': must be in (0, 1]"),
    ("generate-batch-size", "generate -i {prompts} -o {tmp}/o.jsonl --batch-size 0", "'--batch-size'"),
    ("generate-timeout", "generate -i {prompts} -o {tmp}/o.jsonl --timeout 0", "'--timeout': must be > 0"),
    ("generate-not-a-number", "generate -i {prompts} -o {tmp}/o.jsonl --n two", "'--n'"),
    ("generate-unknown-flag", "generate -i {prompts} -o {tmp}/o.jsonl --bogus", "No such option: --bogus"),
    ("generate-corrupt-cache", "generate -i {prompts} -o {tmp}/o.jsonl --cache {corrupt_cache}", "corrupt.sqlite"),
    (
        "generate-unreachable-server",
        "generate -i {prompts} -o {tmp}/o.jsonl --engine openai --base-url http://127.0.0.1:{port}/v1 "
        "--max-retries 0 --timeout 5 --cache {tmp}/c.sqlite",
        "127.0.0.1:{port}",
    ),
    # grade
    ("grade-missing", "grade {missing}", "missing.jsonl: input file not found"),
    ("grade-dir-input", "grade {dir}", "adir: is a directory"),
    ("grade-binary", "grade {binary}", "binary.jsonl, line 1: not UTF-8"),
    ("grade-nul", "grade {nul}", "nul.jsonl, line 1: binary data"),
    ("grade-bad-parquet", "grade {bad_parquet}", "bad.parquet: not a readable Parquet file"),
    ("grade-latin1", "grade {latin1}", "latin1.jsonl, line 1: not UTF-8"),
    ("grade-malformed", "grade {malformed}", "malformed.jsonl, line 2: malformed JSON"),
    ("grade-out-dir", "grade {graded} -o {dir}", "adir: is a directory"),
    ("grade-out-readonly", "grade {graded} -o {ro}/o.jsonl", "not writable"),
    ("grade-workers", "grade {graded} --workers 0", "'--workers': must be >= 1"),
    ("grade-timeout", "grade {graded} --timeout 0", "'--timeout': must be > 0"),
    ("grade-missing-field", "grade {prompts}", "prompts.jsonl, line 1, field 'response': missing field"),
    # eval
    ("eval-engine", "eval -o {tmp}/e --engine foo", "'--engine': unknown engine 'foo'"),
    ("eval-n", "eval -o {tmp}/e --n 0", "'--n': must be >= 1"),
    ("eval-max-tokens", "eval -o {tmp}/e --max-tokens 0", "'--max-tokens': must be >= 1"),
    ("eval-limit", "eval -o {tmp}/e --limit -1", "'--limit': must be >= 1"),
    ("eval-temperature", "eval -o {tmp}/e --temperature -1", "'--temperature': must be >= 0"),
    ("eval-top-p", "eval -o {tmp}/e --top-p 2", "'--top-p': must be in (0, 1]"),
    ("eval-batch-size", "eval -o {tmp}/e --batch-size 0", "'--batch-size': must be >= 1"),
    ("eval-grade-timeout", "eval -o {tmp}/e --grade-timeout 0", "'--grade-timeout': must be > 0"),
    ("eval-out-is-file", "eval -o {file}", "a_file.txt: is a file"),
    ("eval-out-readonly", "eval -o {ro}/e", "not writable"),
    ("eval-benchmark-missing", "eval -o {tmp}/e --benchmark {missing}", "missing.jsonl"),
    ("eval-benchmark-binary", "eval -o {tmp}/e --benchmark {binary}", "binary.jsonl, line 1: not UTF-8"),
    ("eval-benchmark-dir", "eval -o {tmp}/e --benchmark {dir}", "adir"),
    ("eval-benchmark-bad-parquet", "eval -o {tmp}/e --benchmark {bad_parquet}", "bad.parquet"),
    ("eval-protocol", "eval -o {tmp}/e --protocol nope", "nope"),
    ("eval-benchmark-latin1", "eval -o {tmp}/e --benchmark {latin1}", "latin1.jsonl, line 1: not UTF-8"),
    ("eval-benchmark-malformed", "eval -o {tmp}/e --benchmark {malformed}", "malformed.jsonl, line 2"),
    ("eval-corrupt-cache", "eval -o {tmp}/e --limit 1 --max-tokens 8 --cache {corrupt_cache}", "corrupt.sqlite"),
    (
        "eval-unreachable-server",
        "eval -o {tmp}/e --limit 1 --max-tokens 8 --engine openai --model m --base-url http://127.0.0.1:{port}/v1 "
        "--cache {tmp}/c.sqlite",
        "127.0.0.1:{port}",
    ),
    # compare
    ("compare-empty-dirs", "compare {dir} {dir}", "adir"),
    ("compare-missing", "compare {missing} {missing}", "missing.jsonl"),
    ("compare-file", "compare {file} {file}", "a_file.txt"),
    ("compare-out-is-file", "compare {dir} {dir} -o {file}", "a_file.txt: is a file"),
    # curate
    ("curate-missing", "curate {missing} -o {tmp}/r", "missing.jsonl: recipe not found"),
    ("curate-dir", "curate {dir} -o {tmp}/r", "adir: is a directory"),
    ("curate-binary", "curate {binary_yaml} -o {tmp}/r", "binary.yaml, line 1: recipe is not UTF-8"),
    ("curate-bad-yaml", "curate {bad_yaml} -o {tmp}/r", "bad_yaml.yaml, line 3: invalid YAML"),
    ("curate-bad-value", "curate {bad_recipe} -o {tmp}/r", "recipe.dedup.threshold: expected a number"),
    ("curate-broken-set", "curate " + DEMO + " -o {tmp}/r --set x=[1,", "--set x=[1,: the value is not valid YAML"),
    ("curate-set-unknown", "curate " + DEMO + " -o {tmp}/r --set dedup.nope=1", "recipe.dedup: unknown key"),
    ("curate-no-pool", "curate " + TRAIN_RECIPE + " -o {tmp}/r", "needs a 'pool:' section"),
    ("curate-pool-binary", "curate " + DEMO + " -o {tmp}/r --set " + POOL_SOURCE % "binary", "binary.jsonl, line 1"),
    ("curate-pool-missing", "curate " + DEMO + " -o {tmp}/r --set " + POOL_SOURCE % "missing", "missing.jsonl"),
    ("curate-out-is-file", "curate " + DEMO + " -o {file}", "a_file.txt: is a file"),
    ("curate-out-readonly", "curate " + DEMO + " -o {ro}/r", "not writable"),
    # train
    ("train-missing", "train {missing} -o {tmp}/t", "missing.jsonl: recipe not found"),
    ("train-dir", "train {dir} -o {tmp}/t", "adir: is a directory"),
    ("train-binary", "train {binary_yaml} -o {tmp}/t", "recipe is not UTF-8"),
    ("train-broken-set", "train " + TRAIN_RECIPE + " -o {tmp}/t --set x=[1,", "the value is not valid YAML"),
    ("train-bad-value", "train " + TRAIN_RECIPE + " -o {tmp}/t --set cutoff=0", "train: cutoff must be >= 1"),
    ("train-no-train", "train {bad_recipe} -o {tmp}/t", "bad_recipe.yaml"),
    ("train-data-binary", "train " + TRAIN_RECIPE + " -o {tmp}/t --data {binary} --set max_steps=1", "binary.jsonl"),
    ("train-data-dir", "train " + TRAIN_RECIPE + " -o {tmp}/t --data {dir} --set max_steps=1", "adir"),
    ("train-out-is-file", "train " + TRAIN_RECIPE + " -o {file}", "a_file.txt: is a file"),
    # run
    ("run-missing", "run {missing} -o {tmp}/r", "recipe not found"),
    ("run-dir", "run {dir} -o {tmp}/r", "adir: is a directory"),
    ("run-broken-set", "run " + DEMO + " -o {tmp}/r --set x=[1,", "the value is not valid YAML"),
    ("run-no-eval", "run " + DEMO + " -o {tmp}/r --set eval=null", "eval"),
    ("run-out-is-file", "run " + DEMO + " -o {file}", "a_file.txt: is a file"),
    # experiment
    ("experiment-missing", "experiment {missing} -o {tmp}/x", "recipe not found"),
    ("experiment-dir", "experiment {dir} -o {tmp}/x", "adir: is a directory"),
    ("experiment-binary", "experiment {binary_yaml} -o {tmp}/x", "not UTF-8"),
    ("experiment-broken-set", "experiment " + GRID + " -o {tmp}/x --set x=[1,", "the value is not valid YAML"),
    ("experiment-out-is-file", "experiment " + GRID + " -o {file}", "a_file.txt: is a file"),
    # review
    ("review-port", "review {dir} --port 70000", "'--port': must be a port number"),
    ("review-missing-run", "review {missing}", "missing.jsonl: run directory not found"),
    ("review-file-run", "review {file}", "a_file.txt"),
    ("review-merge-binary", "review merge {binary} -o {tmp}/m.jsonl", "binary.jsonl"),
    ("review-merge-latin1", "review merge {latin1} -o {tmp}/m.jsonl", "latin1.jsonl, line 1"),
    ("review-merge-dir", "review merge {dir} -o {tmp}/m.jsonl", "adir"),
    ("review-merge-out-dir", "review merge {graded} -o {dir}", "adir: is a directory"),
    ("review-merge-no-out", "review merge {graded}", "-o OUT.jsonl"),
    # cache
    ("cache-check-missing", "cache check {missing}", "missing.jsonl"),
    ("cache-check-dir", "cache check {dir}", "adir"),
    ("cache-check-binary", "cache check {binary}", "binary.jsonl"),
    ("cache-repair-dir", "cache repair {dir}", "adir"),
    # doctor
    ("doctor-json-dir", "doctor --json {dir}", "adir: is a directory"),
    ("doctor-json-readonly", "doctor --json {ro}/d.json", "not writable"),
]

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
    """The installed entry point (python -m limo.cli, as the `limo` script) behaves the same."""
    proc = subprocess.run(
        [sys.executable, "-m", "limo.cli", *[a.format(**bad) for a in argv]],
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
