"""Human review decisions: RUN/review/decisions.jsonl, written as they are made, read by the select stage.

One JSON object per line (see docs/REVIEW.md and the contract in the project notes):

    {"problem_id": str, "action": "accept"|"reject"|"annotate"|"clear", "candidate_id": str|None,
     "note": str|None, "reviewer": str, "ts": float}

The latest accept/reject/clear line per problem decides; annotate lines only add notes. The file is append-only:
each decision is appended with one write, flushed and fsynced before the caller hears "saved", so a crash loses at
most the line being written (a truncated last line), never an earlier one. Only `merge` onto an existing file
replaces it (atomically), with every one of its lines plus the merged ones.

    from limo.review.decisions import DecisionLog, load_decisions, merge
    DecisionLog(run / "review" / "decisions.jsonl").append("p1", "accept", candidate_id="p1#m#0", reviewer="ann")
    decisions = load_decisions(run / "review" / "decisions.jsonl")   # {problem_id: Decision}
    merge([a, b], out)                                                # several reviewers -> one file + conflicts

Command line: `limo review merge A.jsonl B.jsonl -o OUT.jsonl`.
"""

import json
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from limo.errors import InputError

ACTIONS = ("accept", "reject", "annotate", "clear")
DECIDING_ACTIONS = ("accept", "reject", "clear")
DECISIONS_RELPATH = Path("review") / "decisions.jsonl"


def decisions_path(run_dir: str | Path) -> Path:
    """Where a run keeps its decisions: RUN/review/decisions.jsonl."""
    return Path(run_dir) / DECISIONS_RELPATH


@dataclass
class DecisionLine:
    """One validated line of a decisions file, with where it came from."""

    problem_id: str
    action: str
    candidate_id: str | None
    note: str | None
    reviewer: str
    ts: float
    path: str = ""
    line: int = 0

    def to_json(self) -> dict[str, Any]:
        """The line as written to the file (the contract's fields; not where it was read from)."""
        return {k: v for k, v in asdict(self).items() if k not in ("path", "line")}


@dataclass
class Note:
    text: str
    reviewer: str
    ts: float


@dataclass
class Decision:
    """The state of one problem after all its lines.

    action: "accept" (candidate_id is the chosen candidate), "reject" (drop the problem), "clear" (a decision was
    withdrawn: select falls back to the score) or "annotate" (only notes so far). Only accept and reject change
    what select does.
    """

    problem_id: str
    action: str
    candidate_id: str | None
    reviewer: str
    ts: float
    notes: list[Note] = field(default_factory=list)

    @property
    def reviewed(self) -> bool:
        return self.action in ("accept", "reject")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BrokenLine:
    """A line that could not be read: kept in the file untouched, reported, and skipped."""

    path: str
    line: int
    message: str
    text: str

    def __str__(self) -> str:
        return self.message  # already names the file and line


def validate_line(obj: Any, *, path: str = "", line: int = 0) -> DecisionLine:
    """Check one decoded JSON object against the decisions schema; InputError names file, line and field."""
    where = {"path": path or None, "line": line or None}
    if not isinstance(obj, dict):
        raise InputError(f"expected a JSON object, got {type(obj).__name__}", **where)
    problem_id = obj.get("problem_id")
    if not isinstance(problem_id, str) or not problem_id:
        raise InputError("must be a non-empty string", field="problem_id", **where)
    action = obj.get("action")
    if action not in ACTIONS:
        raise InputError(f"must be one of {', '.join(ACTIONS)} (got {action!r})", field="action", **where)
    candidate_id = obj.get("candidate_id")
    if action == "accept" and (not isinstance(candidate_id, str) or not candidate_id):
        raise InputError("an accept line needs the accepted candidate_id (a string)", field="candidate_id", **where)
    if candidate_id is not None and not isinstance(candidate_id, str):
        raise InputError("must be a string or null", field="candidate_id", **where)
    note = obj.get("note")
    if note is not None and not isinstance(note, str):
        raise InputError("must be a string or null", field="note", **where)
    if action == "annotate" and not (note or "").strip():
        raise InputError("an annotate line needs a non-empty note", field="note", **where)
    reviewer = obj.get("reviewer", "")
    if not isinstance(reviewer, str):
        raise InputError("must be a string", field="reviewer", **where)
    ts = obj.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, (int, float)):
        raise InputError("must be a number (seconds since the epoch)", field="ts", **where)
    return DecisionLine(problem_id, action, candidate_id, note, reviewer, float(ts), path=path, line=line)


def read_lines(path: str | Path, *, strict: bool = True) -> tuple[list[DecisionLine], list[BrokenLine]]:
    """All lines of one decisions file, in file order. A missing file has no lines.

    strict: the first broken line raises InputError (file + line + what is wrong). Otherwise broken lines are
    returned separately and every other line is kept (what the review server does, so nothing is lost).
    """
    path = Path(path)
    if not path.exists():
        return [], []
    lines: list[DecisionLine] = []
    broken: list[BrokenLine] = []
    raw = path.read_bytes()
    text_lines = raw.split(b"\n")
    ends_without_newline = not raw.endswith(b"\n")
    for index, chunk in enumerate(text_lines, start=1):
        if not chunk.strip():
            continue
        last_unterminated = ends_without_newline and index == len(text_lines)
        try:
            try:
                obj = json.loads(chunk.decode("utf-8"))
            except UnicodeDecodeError as e:
                raise InputError(f"not UTF-8 ({e.reason})", path=str(path), line=index) from e
            except json.JSONDecodeError as e:
                hint = (
                    " — an incomplete last line, probably cut off by a crash while it was written; delete it or "
                    "finish it by hand"
                    if last_unterminated
                    else " — fix or delete this line"
                )
                message = f"malformed JSON ({e.msg} at column {e.colno}){hint}"
                raise InputError(message, path=str(path), line=index) from e
            lines.append(validate_line(obj, path=str(path), line=index))
        except InputError as e:
            if strict:
                raise
            broken.append(BrokenLine(str(path), index, str(e), chunk.decode("utf-8", "replace")[:500]))
    return lines, broken


def fold(lines: Iterable[DecisionLine]) -> dict[str, Decision]:
    """Latest accept/reject/clear line per problem decides (by ts, file order breaks ties); annotates add notes."""
    ordered = sorted(enumerate(lines), key=lambda item: (item[1].ts, item[0]))
    out: dict[str, Decision] = {}
    for _, ln in ordered:
        current = out.get(ln.problem_id)
        if current is None:
            current = out[ln.problem_id] = Decision(ln.problem_id, "annotate", None, ln.reviewer, ln.ts)
        if ln.action in DECIDING_ACTIONS:
            current.action = ln.action
            current.candidate_id = ln.candidate_id if ln.action == "accept" else None
            current.reviewer, current.ts = ln.reviewer, ln.ts
        if ln.note and ln.note.strip():
            current.notes.append(Note(ln.note, ln.reviewer, ln.ts))
    return out


def _as_paths(path_or_paths: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(path_or_paths, (str, Path)):
        return [Path(path_or_paths)]
    return [Path(p) for p in path_or_paths]


def load_decisions(path_or_paths: str | Path | Iterable[str | Path]) -> dict[str, Decision]:
    """{problem_id: Decision} from one or more decisions files (missing files count as empty).

    Raises InputError naming the file and line of the first broken line; the file itself is never changed.
    The select stage uses this: accept -> that candidate wins, reject -> drop_reason "human_rejected".
    """
    lines: list[DecisionLine] = []
    for path in _as_paths(path_or_paths):
        lines.extend(read_lines(path, strict=True)[0])
    return fold(lines)


def load_decisions_tolerant(
    path_or_paths: str | Path | Iterable[str | Path],
) -> tuple[dict[str, Decision], list[BrokenLine]]:
    """Like load_decisions, but broken lines are reported (second value) and every other line is kept."""
    lines: list[DecisionLine] = []
    broken: list[BrokenLine] = []
    for path in _as_paths(path_or_paths):
        good, bad = read_lines(path, strict=False)
        lines.extend(good)
        broken.extend(bad)
    return fold(lines), broken


class DecisionLog:
    """Appends decisions to a file: one os.write per line, then fsync, before returning. Thread-safe."""

    def __init__(self, path: str | Path, reviewer: str = ""):
        self.path = Path(path)
        self.reviewer = reviewer
        self._lock = threading.Lock()

    def append(
        self,
        problem_id: str,
        action: str,
        *,
        candidate_id: str | None = None,
        note: str | None = None,
        reviewer: str | None = None,
        ts: float | None = None,
    ) -> DecisionLine:
        obj = {
            "problem_id": problem_id,
            "action": action,
            "candidate_id": candidate_id,
            "note": note,
            "reviewer": self.reviewer if reviewer is None else reviewer,
            "ts": time.time() if ts is None else ts,
        }
        line = validate_line(obj)
        data = (json.dumps(line.to_json(), ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            created = not self.path.exists()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                if not created and _ends_without_newline(self.path):
                    # a crash left a partial last line: end it, so this decision stays a line of its own
                    data = b"\n" + data
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                _fsync_dir(self.path.parent)
        line.path = str(self.path)
        return line


def _ends_without_newline(path: Path) -> bool:
    size = path.stat().st_size
    if size == 0:
        return False
    with path.open("rb") as f:
        f.seek(size - 1)
        return f.read(1) != b"\n"


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass
class Conflict:
    """Reviewers whose final decisions on one problem differ; `winner` is the one kept (the latest)."""

    problem_id: str
    by_reviewer: dict[str, str]  # reviewer -> "accept <candidate_id>" | "reject"
    winner: str

    def __str__(self) -> str:
        parts = "; ".join(f"{r or '(anonymous)'}: {d}" for r, d in sorted(self.by_reviewer.items()))
        return f"{self.problem_id}: {parts} -> kept the latest: {self.winner}"


@dataclass
class MergeResult:
    out: Path
    lines: int
    problems: int
    decided: int
    conflicts: list[Conflict]
    kept_from_out: int = 0  # lines of an existing OUT folded in (all of them)


def _describe(decision: Decision) -> str:
    return f"accept {decision.candidate_id}" if decision.action == "accept" else decision.action


def merge(paths: Iterable[str | Path], out: str | Path) -> MergeResult:
    """Merge decision files from several reviewers into one (all lines, ordered by time; written atomically).

    Every input line is kept, so the merged file folds to "latest decision wins" and keeps every note.
    An existing `out` (e.g. RUN/review/decisions.jsonl) is folded in: every one of its lines is kept, and an input
    line identical to one already there is not added twice; an `out` with an unreadable line is refused.
    Conflicts (reviewers whose final accept/reject differ on a problem) are returned so they can be shown.
    Input files must exist and be fully readable (InputError names the broken file and line).
    """
    from limo.io import atomic_write_text, check_input_file

    paths = [Path(p) for p in paths]
    out = Path(out)
    if not paths:
        raise InputError("merge needs at least one decisions file")
    existing: list[DecisionLine] = []
    if out.exists():
        try:
            existing = read_lines(check_input_file(out, "decisions file"), strict=True)[0]
        except InputError as e:
            raise InputError(f"{e}; -o names an existing file that merge folds in: fix it or choose another -o") from e
    seen = {_identity(ln) for ln in existing}
    all_lines: list[DecisionLine] = list(existing)
    for path in paths:
        if path.resolve() == out.resolve():
            continue  # OUT itself as an input: already folded in
        for ln in read_lines(check_input_file(path, "decisions file"), strict=True)[0]:
            if _identity(ln) not in seen:
                seen.add(_identity(ln))
                all_lines.append(ln)
    ordered = [ln for _, ln in sorted(enumerate(all_lines), key=lambda item: (item[1].ts, item[0]))]
    folded = fold(ordered)

    per_reviewer: dict[str, dict[str, Decision]] = {}
    for ln in ordered:
        per_reviewer.setdefault(ln.reviewer, {})
    for reviewer in per_reviewer:
        per_reviewer[reviewer] = fold(ln for ln in ordered if ln.reviewer == reviewer)
    conflicts: list[Conflict] = []
    for problem_id, final in sorted(folded.items()):
        views = {
            reviewer: _describe(decisions[problem_id])
            for reviewer, decisions in per_reviewer.items()
            if problem_id in decisions and decisions[problem_id].reviewed
        }
        if len(set(views.values())) > 1:
            conflicts.append(Conflict(problem_id, views, _describe(final)))

    atomic_write_text(out, "".join(json.dumps(ln.to_json(), ensure_ascii=False) + "\n" for ln in ordered))
    return MergeResult(
        out=out,
        lines=len(ordered),
        problems=len(folded),
        decided=sum(1 for d in folded.values() if d.reviewed),
        conflicts=conflicts,
        kept_from_out=len(existing),
    )


def _identity(line: DecisionLine) -> str:
    return json.dumps(line.to_json(), sort_keys=True, ensure_ascii=False)
