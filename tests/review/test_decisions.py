"""Decisions file: append + fsync, latest decision wins, notes, broken lines (strict and tolerant), crash safety,
merging several reviewers, and the `limo review merge` command."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from limo.errors import InputError
from limo.review.decisions import DecisionLog, load_decisions, load_decisions_tolerant, merge, read_lines

LIMO = [sys.executable, "-m", "limo.cli"]


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_append_writes_contract_lines_and_latest_wins(tmp_path):
    path = tmp_path / "review" / "decisions.jsonl"
    log = DecisionLog(path, reviewer="ann")
    log.append("p1", "accept", candidate_id="p1#m#0", ts=1.0)
    log.append("p1", "annotate", note="step 3 is hand-wavy", ts=2.0)
    log.append("p1", "accept", candidate_id="p1#m#1", ts=3.0)
    log.append("p2", "reject", ts=4.0)
    log.append("p3", "accept", candidate_id="p3#m#0", ts=5.0)
    log.append("p3", "clear", ts=6.0)
    lines = _lines(path)
    assert len(lines) == 6
    assert set(lines[0]) == {"problem_id", "action", "candidate_id", "note", "reviewer", "ts"}
    assert lines[0] == {"problem_id": "p1", "action": "accept", "candidate_id": "p1#m#0", "note": None,
                        "reviewer": "ann", "ts": 1.0}  # fmt: skip
    d = load_decisions(path)
    assert d["p1"].action == "accept" and d["p1"].candidate_id == "p1#m#1"
    assert [n.text for n in d["p1"].notes] == ["step 3 is hand-wavy"]
    assert d["p2"].action == "reject" and d["p2"].reviewed
    assert d["p3"].action == "clear" and d["p3"].candidate_id is None and not d["p3"].reviewed


def test_latest_by_timestamp_not_file_order(tmp_path):
    path = tmp_path / "d.jsonl"
    log = DecisionLog(path, reviewer="ann")
    log.append("p1", "reject", ts=20.0)
    log.append("p1", "accept", candidate_id="c", ts=10.0)  # older decision appended later (e.g. a merged file)
    assert load_decisions(path)["p1"].action == "reject"


def test_missing_file_means_no_decisions(tmp_path):
    assert load_decisions(tmp_path / "review" / "decisions.jsonl") == {}


@pytest.mark.parametrize(
    ("line", "expect"),
    [
        ('{"problem_id": "p9", "action": "accept", "candidate_id": "c", "reviewer": "x", "ts": 1', "malformed JSON"),
        ('{"problem_id": "p9", "action": "approve", "candidate_id": null, "reviewer": "x", "ts": 1}', "'action'"),
        ('{"problem_id": "p9", "action": "accept", "candidate_id": null, "reviewer": "x", "ts": 1}', "'candidate_id'"),
        ('{"problem_id": "p9", "action": "reject", "reviewer": "x", "ts": "yesterday"}', "'ts'"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_hand_edited_broken_line_names_file_and_line(tmp_path, line, expect):
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(path, reviewer="ann")
    log.append("p1", "accept", candidate_id="p1#a", ts=1.0)
    with path.open("a") as f:
        f.write(line + "\n")
    log.append("p2", "reject", ts=3.0)
    before = path.read_bytes()
    with pytest.raises(InputError) as err:
        load_decisions(path)
    assert f"{path}, line 2" in str(err.value) and expect in str(err.value)
    decisions, broken = load_decisions_tolerant(path)  # what the server does: report it, keep the rest
    assert set(decisions) == {"p1", "p2"}
    assert [(b.line, expect in b.message) for b in broken] == [(2, True)]
    assert path.read_bytes() == before  # nothing rewritten, nothing lost


def test_crash_truncated_last_line_is_reported_and_complete_lines_kept(tmp_path):
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(path, reviewer="ann")
    for i in range(5):
        log.append(f"p{i}", "accept", candidate_id=f"p{i}#m#0", ts=float(i))
    full = path.read_bytes()
    last_start = full.rstrip(b"\n").rfind(b"\n") + 1
    path.write_bytes(full[: last_start + 17])  # the process died in the middle of writing p4's line
    with pytest.raises(InputError, match=r"line 5: .*incomplete last line"):
        load_decisions(path)
    decisions, broken = load_decisions_tolerant(path)
    assert sorted(decisions) == ["p0", "p1", "p2", "p3"]
    assert len(broken) == 1 and broken[0].line == 5
    # the next decision still lands on a line of its own; the partial line stays for a human to look at
    log.append("p4", "accept", candidate_id="p4#m#0", ts=9.0)
    decisions, broken = load_decisions_tolerant(path)
    assert sorted(decisions) == ["p0", "p1", "p2", "p3", "p4"] and [b.line for b in broken] == [5]
    assert read_lines(path, strict=False)[0][-1].line == 6


def test_append_refuses_invalid_decision(tmp_path):
    log = DecisionLog(tmp_path / "d.jsonl")
    with pytest.raises(InputError, match="candidate_id"):
        log.append("p1", "accept")
    with pytest.raises(InputError, match="note"):
        log.append("p1", "annotate", note="  ")
    assert not (tmp_path / "d.jsonl").exists()


def test_merge_two_reviewers_reports_conflicts(tmp_path):
    a, b = tmp_path / "ann.jsonl", tmp_path / "bob.jsonl"
    ann, bob = DecisionLog(a, reviewer="ann"), DecisionLog(b, reviewer="bob")
    ann.append("p1", "accept", candidate_id="p1#x", ts=1.0)
    bob.append("p1", "accept", candidate_id="p1#y", ts=2.0)  # conflict: different candidates
    ann.append("p2", "reject", ts=3.0)
    bob.append("p2", "reject", ts=4.0)  # agreement
    bob.append("p3", "annotate", note="check the units", ts=5.0)
    ann.append("p4", "accept", candidate_id="p4#x", ts=6.0)
    bob.append("p4", "reject", ts=0.5)  # conflict, ann is later
    result = merge([a, b], tmp_path / "merged.jsonl")
    assert result.lines == 7 and result.problems == 4 and result.decided == 3
    assert [c.problem_id for c in result.conflicts] == ["p1", "p4"]
    assert result.conflicts[0].by_reviewer == {"ann": "accept p1#x", "bob": "accept p1#y"}
    assert result.conflicts[0].winner == "accept p1#y" and result.conflicts[1].winner == "accept p4#x"
    merged = load_decisions(tmp_path / "merged.jsonl")
    assert merged["p1"].candidate_id == "p1#y" and merged["p2"].action == "reject"
    assert merged["p3"].notes[0].text == "check the units" and not merged["p3"].reviewed
    ts = [x["ts"] for x in _lines(tmp_path / "merged.jsonl")]
    assert ts == sorted(ts)


def test_merge_refuses_broken_or_missing_input(tmp_path):
    a = tmp_path / "a.jsonl"
    a.write_text('{"problem_id": "p1", "action": "reject", "reviewer": "x", "ts": 1}\n{oops\n')
    with pytest.raises(InputError, match=r"a.jsonl, line 2"):
        merge([a], tmp_path / "out.jsonl")
    with pytest.raises(InputError, match="file not found"):
        merge([tmp_path / "nope.jsonl"], tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()


def test_merge_command(tmp_path):
    a, b = tmp_path / "ann.jsonl", tmp_path / "bob.jsonl"
    DecisionLog(a, reviewer="ann").append("p1", "accept", candidate_id="p1#x", ts=1.0)
    DecisionLog(b, reviewer="bob").append("p1", "reject", ts=2.0)
    out = tmp_path / "merged.jsonl"
    proc = subprocess.run([*LIMO, "review", "merge", str(a), str(b), "-o", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "conflict" in proc.stderr and "p1" in proc.stderr
    assert load_decisions(out)["p1"].action == "reject"
    proc = subprocess.run([*LIMO, "review", "merge", str(a)], capture_output=True, text=True)
    assert proc.returncode == 2 and "-o OUT.jsonl" in proc.stderr


def test_merge_into_an_existing_decisions_file_keeps_every_line(tmp_path):
    """The issue: `limo review merge a b -o RUN/review/decisions.jsonl` replaced a 66-line file with 2 lines."""
    run_file = tmp_path / "run" / "review" / "decisions.jsonl"
    log = DecisionLog(run_file, reviewer="owner")
    for i in range(66):
        log.append(f"p{i}", "reject" if i % 3 else "annotate", note=None if i % 3 else f"note {i}", ts=float(i))
    before = run_file.read_text().splitlines()
    a, b = tmp_path / "ann.jsonl", tmp_path / "bob.jsonl"
    DecisionLog(a, reviewer="ann").append("p1", "accept", candidate_id="p1#x", ts=100.0)
    DecisionLog(b, reviewer="bob").append("p70", "reject", ts=101.0)
    result = merge([a, b], run_file)
    after = run_file.read_text().splitlines()
    assert result.kept_from_out == 66 and result.lines == 68 and len(after) == 68
    assert sorted(before) == sorted(set(after) & set(before))  # every existing line is still there
    assert load_decisions(run_file)["p1"].candidate_id == "p1#x"
    again = merge([a, b, run_file], run_file)  # merging the same files again adds nothing, drops nothing
    assert again.lines == 68 and sorted(run_file.read_text().splitlines()) == sorted(after)


def test_merge_refuses_an_existing_output_with_a_broken_line(tmp_path):
    out = tmp_path / "decisions.jsonl"
    out.write_text('{"problem_id": "p1", "action": "reject", "reviewer": "x", "ts": 1}\n{oops\n')
    a = tmp_path / "a.jsonl"
    DecisionLog(a, reviewer="ann").append("p2", "reject", ts=2.0)
    text = out.read_text()
    with pytest.raises(InputError, match=r"decisions.jsonl, line 2: malformed JSON.*choose another -o"):
        merge([a], out)
    assert out.read_text() == text
