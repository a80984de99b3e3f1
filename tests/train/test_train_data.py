"""Training rows: loading from every source, bad rows named by file/line/field, cutoff truncation/drop counted."""

import json
from pathlib import Path

import pytest

from limo.errors import InputError, LimoError
from limo.train.data import IGNORE, load_rows, tokenize_rows
from limo.train.templates import apply_template

DATA = Path(__file__).parent.parent / "data" / "train"


@pytest.fixture
def chatml(tokenizer):
    apply_template(tokenizer, "chatml")
    return tokenizer


def test_row_without_assistant_turn_names_file_line_field(chatml):
    where, rows = load_rows(str(DATA / "no_assistant.jsonl"))
    with pytest.raises(InputError) as e:
        tokenize_rows(chatml, where, rows, cutoff=512, overlength="truncate", invalid_rows="error")
    msg = str(e.value)
    assert "no_assistant.jsonl" in msg and "line 2" in msg and "'messages'" in msg and "assistant" in msg


def test_row_without_assistant_turn_dropped_and_counted(chatml):
    where, rows = load_rows(str(DATA / "no_assistant.jsonl"))
    cols, stats = tokenize_rows(chatml, where, rows, cutoff=512, overlength="truncate", invalid_rows="drop")
    assert stats.rows_in == 3 and stats.rows_out == 2 == len(cols["input_ids"])
    assert stats.dropped == {"no_assistant_turn": 1}


def test_unknown_role_is_an_input_error(chatml):
    where, rows = load_rows(str(DATA / "bad_role.jsonl"))
    with pytest.raises(InputError, match=r"line 2.*robot"):
        tokenize_rows(chatml, where, rows, cutoff=512, overlength="truncate", invalid_rows="drop")


def test_row_without_messages_or_question_names_the_field(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"id": "a", "text": "hi"}) + "\n")
    with pytest.raises(InputError, match=r"x.jsonl, line 1, field 'question'.*messages"):
        load_rows(str(path))


LIMO_ROWS = [  # the GAIR/LIMO schema: question, solution, answer
    {"question": "What is 2+3?", "solution": "2+3 = 5, so the answer is \\boxed{5}.", "answer": "5"},
    {"question": "What is 7*6?", "solution": "7*6 = 42. \\boxed{42}", "answer": "42"},
]


def test_released_limo_schema_becomes_limo_chat(tmp_path, chatml):
    from limo.records import LIMO_SYSTEM_PROMPT

    path = tmp_path / "limo.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in LIMO_ROWS))
    where, rows = load_rows(str(path))
    assert rows[0][1] == [
        {"role": "system", "content": LIMO_SYSTEM_PROMPT},
        {"role": "user", "content": LIMO_ROWS[0]["question"]},
        {"role": "assistant", "content": LIMO_ROWS[0]["solution"]},
    ]
    cols, _ = tokenize_rows(chatml, where, rows, cutoff=512, overlength="truncate", invalid_rows="error")
    # the loss covers exactly the solution and the end-of-turn token, nothing of the prompt
    ids, labels = cols["input_ids"][0], cols["labels"][0]
    learned = [t for t, lab in zip(ids, labels, strict=True) if lab != IGNORE]
    assert chatml.decode(learned) == LIMO_ROWS[0]["solution"] + "<|im_end|>"


def test_parquet_and_field_mapping(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "mine.parquet"
    pq.write_table(pa.Table.from_pylist([{"problem": "Q?", "response": "A."}]), path)
    where, rows = load_rows(str(path), fields={"question": "problem", "solution": "response"}, system=None)
    assert where == str(path)
    assert rows == [(1, [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}])]


def test_released_data_missing_solution_names_file_and_field(tmp_path):
    path = tmp_path / "limo_broken.jsonl"
    path.write_text(json.dumps(LIMO_ROWS[0]) + "\n" + json.dumps({"question": "Q?", "answer": "1"}) + "\n")
    with pytest.raises(InputError, match=r"limo_broken.jsonl, line 2, field 'solution'"):
        load_rows(str(path))


def test_hub_layout_dataset_dir(tmp_path):
    """A save_to_disk directory with GAIR/LIMO's columns (the Hub path is datasets.load_dataset on an id)."""
    import datasets

    datasets.Dataset.from_list(LIMO_ROWS).save_to_disk(str(tmp_path / "hf"))
    _, rows = load_rows(str(tmp_path / "hf"))
    assert [m[-1]["content"] for _, m in rows] == [r["solution"] for r in LIMO_ROWS]


def test_over_cutoff_truncated_and_counted(chatml):
    where, rows = load_rows(str(DATA / "lengths.jsonl"))
    full, _ = tokenize_rows(chatml, where, rows, cutoff=10_000, overlength="truncate", invalid_rows="error")
    long_len = len(full["input_ids"][1])
    cutoff = long_len - 20
    assert len(full["input_ids"][0]) < cutoff
    cols, stats = tokenize_rows(chatml, where, rows, cutoff=cutoff, overlength="truncate", invalid_rows="error")
    assert stats.truncated == 1 and stats.rows_out == 2 and not stats.dropped
    assert len(cols["input_ids"][1]) == cutoff
    assert cols["input_ids"][1] == full["input_ids"][1][:cutoff]
    assert any(v != IGNORE for v in cols["labels"][1])


def test_over_cutoff_dropped_and_counted(chatml):
    where, rows = load_rows(str(DATA / "lengths.jsonl"))
    cols, stats = tokenize_rows(chatml, where, rows, cutoff=40, overlength="drop", invalid_rows="error")
    assert stats.dropped == {"over_cutoff": 1} and stats.rows_out == 1 and stats.truncated == 0


def test_cutoff_inside_the_prompt_leaves_nothing_to_learn(chatml):
    where, rows = load_rows(str(DATA / "lengths.jsonl"))
    with pytest.raises(LimoError, match="no trainable rows"):
        tokenize_rows(chatml, where, rows, cutoff=5, overlength="truncate", invalid_rows="error")


def test_sources_hf_dir_and_run_dir(tmp_path):
    import datasets

    rows = [json.loads(line) for line in (DATA / "lengths.jsonl").read_text().splitlines()]
    export = tmp_path / "run" / "export"
    datasets.Dataset.from_list(rows).save_to_disk(str(export / "hf"))
    where, got = load_rows(str(export / "hf"))
    assert [m for _, m in got] == [r["messages"] for r in rows]
    where, got = load_rows(str(tmp_path / "run"))  # a curation run directory: its export is used
    assert where.endswith("hf") and len(got) == 2
    with pytest.raises(LimoError, match="not found"):
        load_rows(str(tmp_path / "nope.jsonl"))
