"""Reading and writing JSONL / Parquet tables, with errors that name the file and line.

Writes are atomic (write to a temp file, then rename), so a crash never leaves half a file behind.
"""

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from limo.errors import InputError


def check_input_file(path: str | Path, what: str = "input file") -> Path:
    """The path of an existing, readable regular file, or an InputError saying what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} not found", path=str(path))
    if path.is_dir():
        raise InputError(f"is a directory; give the {what} itself", path=str(path))
    if not os.access(path, os.R_OK):
        raise InputError(f"{what} is not readable (check its permissions)", path=str(path))
    return path


def _not_utf8(path: Path, data: bytes, e: UnicodeDecodeError, what: str) -> InputError:
    line = data.count(b"\n", 0, e.start) + 1
    return InputError(f"{what} is not UTF-8 text (byte {e.start}); is it binary?", path=str(path), line=line)


def read_text(path: str | Path, what: str = "input file") -> str:
    """A whole UTF-8 text file; a missing file, a directory or non-UTF-8 bytes raise a one-line InputError."""
    path = check_input_file(path, what)
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _not_utf8(path, data, e, what) from None


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line_number, object) for each non-blank line. Raises InputError naming the file and line."""
    path = check_input_file(path)
    with path.open("rb") as f:
        for line_no, raw in enumerate(f, start=1):
            if b"\x00" in raw:
                raise InputError("binary data (a NUL byte); expected JSON lines", path=str(path), line=line_no)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(
                    f"not UTF-8 text (byte {e.start} of the line); is the file binary?", path=str(path), line=line_no
                ) from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"malformed JSON ({e.msg} at column {e.colno})", path=str(path), line=line_no) from e
            if not isinstance(obj, dict):
                raise InputError(f"expected a JSON object, got {type(obj).__name__}", path=str(path), line=line_no)
            yield line_no, obj


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    return [obj for _, obj in iter_jsonl(path)]


def read_table(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a .jsonl or .parquet file."""
    path = Path(path)
    if path.suffix == ".parquet":
        check_input_file(path)
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path).to_pylist()
        except (pa.ArrowException, OSError) as e:
            reason = " ".join(str(e).split())
            raise InputError(f"not a readable Parquet file ({reason})", path=str(path)) from None
    if path.suffix in (".jsonl", ".json"):
        return read_jsonl(path)
    raise InputError("unsupported file type (use .jsonl or .parquet)", path=str(path))


def check_output_file(path: str | Path, overwrite: bool = True) -> Path:
    """Refuse (one line) an output path that is a directory or sits where nothing can be written; with
    `overwrite=False` also refuse an existing file."""
    path = Path(path)
    if path.is_dir():
        raise InputError("is a directory; give a file name for the output", path=str(path))
    if path.exists() and not overwrite:
        raise InputError("exists; choose a new output path or remove it first", path=str(path))
    _check_writable_parent(path, path.parent)
    return path


def check_output_dir(path: str | Path) -> Path:
    """Refuse (one line) an output directory that is a file or sits where nothing can be written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError("is a file; give a directory for the output", path=str(path))
    _check_writable_parent(path, path)
    return path


def _check_writable_parent(path: Path, start: Path) -> None:
    existing = next((p for p in (start, *start.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise InputError(f"cannot create the output: {existing} is a file, not a directory", path=str(path))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"cannot write here: {existing} is not writable; choose another output path", path=str(path))


def atomic_write_text(path: str | Path, text: str) -> None:
    path = check_output_file(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise InputError(
            f"cannot write the output ({e.strerror}); choose another output path", path=str(path)
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n")
