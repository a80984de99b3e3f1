"""Training data: rows -> chat messages -> token ids + labels (-100 outside assistant turns), cut at the cutoff.

Sources (`TrainConfig.data`): a JSONL or Parquet file, a `datasets.save_to_disk` directory (RUN/export/hf), a curation
run directory (its export/ is used), or a hub dataset id. A row is either chat `messages` (what `limo curate` exports)
or a question/solution pair, the schema of LIMO's released data (HF `GAIR/LIMO`: `question`, `solution`, `answer`),
turned into system/user/assistant messages with LIMO's system prompt (records.LIMO_SYSTEM_PROMPT). Other column
names are mapped with `data_fields: {question: problem, solution: response}`. Every row is checked: `messages` must
be a list of {role, content} with roles system/user/assistant and at least one non-empty assistant turn; a missing
field or a bad row is an InputError naming the file, line and field (or, with `invalid_rows: drop`, an empty
assistant turn is counted and dropped). Rows longer than the cutoff are truncated (the assistant tokens that still
fit keep their loss) or dropped, as the recipe says, and counted either way. The counts go to DIR/data_stats.json.

    from limo.train.data import load_rows, tokenize_rows
"""

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from limo.errors import InputError, LimoError
from limo.records import LIMO_SYSTEM_PROMPT

ROLES = ("system", "user", "assistant")
IGNORE = -100


@dataclass
class DataStats:
    rows_in: int = 0
    rows_out: int = 0
    truncated: int = 0
    dropped: Counter = field(default_factory=Counter)
    tokens: int = 0
    loss_tokens: int = 0
    max_len: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "truncated": self.truncated,
            "dropped": dict(self.dropped),
            "tokens": self.tokens,
            "loss_tokens": self.loss_tokens,
            "max_len": self.max_len,
        }


def resolve_source(source: str) -> Path | str:
    path = Path(source)
    if path.is_dir() and (path / "export").is_dir():  # a curation run directory
        for candidate in (path / "export" / "messages.jsonl", path / "export" / "hf"):
            if candidate.exists():
                return candidate
        raise LimoError(
            f"{path}: no export/messages.jsonl or export/hf in this run directory (run `limo curate` first)"
        )
    if path.is_dir() and not any((path / name).exists() for name in ("state.json", "dataset_dict.json")):
        raise LimoError(
            f"{path}: a directory that is neither a curation run nor a dataset saved with save_to_disk "
            "(give a JSONL/Parquet file, a save_to_disk dir or a run dir)"
        )
    if path.exists():
        return path
    if source.count("/") == 1 and not source.startswith((".", "/")):
        return source  # hub dataset id
    raise LimoError(
        f"training data '{source}' not found (a JSONL/Parquet file, a save_to_disk dir, a run dir or a hub id)"
    )


DEFAULT_FIELDS = {"question": "question", "solution": "solution"}  # GAIR/LIMO's released columns


def row_messages(row: dict[str, Any], where: str, line: int | None, fields: dict[str, str], system: str | None) -> Any:
    """A row's chat messages: its `messages`, else question/solution (mapped by `fields`) as LIMO-format chat."""
    from limo.records import chat_messages

    if "messages" in row:
        return row["messages"]
    q, a = fields["question"], fields["solution"]
    if q not in row:
        why = f"no 'messages' and no question column '{q}' (set data_fields to map yours)"
        raise InputError(why, path=where, line=line, field=q)
    if a not in row:
        raise InputError(f"question without its solution column '{a}'", path=where, line=line, field=a)
    for name in (q, a):
        if not isinstance(row[name], str):
            raise InputError(f"expected a string, got {type(row[name]).__name__}", path=where, line=line, field=name)
    return chat_messages(row[q], row[a], system=system)


def _dataset_rows(src: Path | str) -> list[dict[str, Any]]:
    import datasets

    ds = datasets.load_from_disk(str(src)) if isinstance(src, Path) else datasets.load_dataset(src)
    if isinstance(ds, datasets.DatasetDict):
        if "train" not in ds:
            raise LimoError(f"{src}: dataset has no 'train' split (splits: {list(ds)})")
        ds = ds["train"]
    return ds.to_list()


def load_rows(
    source: str, fields: dict[str, str] | None = None, system: str | None = LIMO_SYSTEM_PROMPT
) -> tuple[str, list[tuple[int | None, Any]]]:
    """(where, [(line or row number, messages)]) from any supported source."""
    fields = {**DEFAULT_FIELDS, **(fields or {})}
    src = resolve_source(source)
    if isinstance(src, Path) and src.is_file():
        from limo.io import iter_jsonl, read_table

        where = str(src)
        numbered = iter_jsonl(src) if src.suffix != ".parquet" else enumerate(read_table(src), start=1)
    else:
        where = str(src)
        numbered = enumerate(_dataset_rows(src), start=1)
    return where, [(i, row_messages(row, where, i, fields, system)) for i, row in numbered]


def check_messages(messages: Any, where: str, line: int | None) -> str | None:
    """None when the row is usable, else the drop reason; structural errors raise InputError."""
    if not isinstance(messages, list) or not messages:
        raise InputError("expected a non-empty list of {role, content}", path=where, line=line, field="messages")
    for k, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise InputError(f"message {k} needs string 'role' and 'content'", path=where, line=line, field="messages")
        if m["role"] not in ROLES:
            raise InputError(
                f"message {k}: unknown role {m['role']!r}; known: {list(ROLES)}",
                path=where,
                line=line,
                field="messages",
            )
    if not any(m["role"] == "assistant" and m["content"].strip() for m in messages):
        return "no_assistant_turn"
    return None


def tokenize_messages(tokenizer, messages: list[dict]) -> tuple[list[int], list[int]]:
    """input_ids and labels (token id inside assistant turns, -100 elsewhere) through the tokenizer's template."""
    out = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True, add_generation_prompt=False
    )
    ids = list(out["input_ids"])
    mask = list(out["assistant_masks"])
    labels = [t if m else IGNORE for t, m in zip(ids, mask, strict=True)]
    return ids, labels


def tokenize_rows(
    tokenizer, where: str, rows: list[tuple[int | None, Any]], cutoff: int, overlength: str, invalid_rows: str
) -> tuple[dict[str, list], DataStats]:
    """Tokenise, check and cut every row; returns columns {input_ids, labels} and the counts."""
    stats = DataStats(rows_in=len(rows))
    cols: dict[str, list] = {"input_ids": [], "labels": []}
    for line, messages in rows:
        reason = check_messages(messages, where, line)
        if reason is not None:
            if invalid_rows == "error":
                raise InputError(
                    "row has no assistant turn with content, so there is nothing to train on "
                    "(set invalid_rows: drop to skip such rows)",
                    path=where,
                    line=line,
                    field="messages",
                )
            stats.dropped[reason] += 1
            continue
        ids, labels = tokenize_messages(tokenizer, messages)
        if all(label == IGNORE for label in labels):
            raise LimoError(
                f"{where}, line {line}: the chat template marked no assistant tokens; "
                "it needs {% generation %} markers"
            )
        if len(ids) > cutoff:
            if overlength == "drop":
                stats.dropped["over_cutoff"] += 1
                continue
            ids, labels = ids[:cutoff], labels[:cutoff]
            if all(label == IGNORE for label in labels):
                stats.dropped["no_assistant_tokens_within_cutoff"] += 1
                continue
            stats.truncated += 1
        cols["input_ids"].append(ids)
        cols["labels"].append(labels)
        stats.tokens += len(ids)
        stats.loss_tokens += sum(label != IGNORE for label in labels)
        stats.max_len = max(stats.max_len, len(ids))
    stats.rows_out = len(cols["input_ids"])
    if stats.rows_out == 0:
        raise LimoError(f"{where}: no trainable rows left (dropped: {dict(stats.dropped)})")
    return cols, stats
