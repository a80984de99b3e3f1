"""The body of `limo review`: serve a run's review page, or merge decision files from several reviewers.

limo review RUN [--port 8765] [--reviewer NAME]
limo review merge A.jsonl B.jsonl [...] -o OUT.jsonl
"""

import getpass
from pathlib import Path

from limo.errors import LimoError


def default_reviewer() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (containers): decisions stay anonymous
        return ""


def review_command(args: list[str], *, port: int, reviewer: str | None, out: Path | None) -> None:
    if args and args[0] == "merge":
        files = args[1:]
        if not files:
            raise LimoError("usage: limo review merge A.jsonl B.jsonl ... -o OUT.jsonl")
        if out is None:
            raise LimoError("limo review merge: say where to write the merged file with -o OUT.jsonl")
        run_merge([Path(f) for f in files], out)
        return
    if len(args) != 1:
        raise LimoError("usage: limo review RUN [--port P] [--reviewer NAME]   (or: limo review merge A B -o OUT)")
    if out is not None:
        raise LimoError("-o/--out is only for `limo review merge`")
    from limo.review.server import serve

    serve(Path(args[0]), port=port, reviewer=default_reviewer() if reviewer is None else reviewer)


def run_merge(files: list[Path], out: Path) -> None:
    from limo.console import console, kv_table
    from limo.review.decisions import merge

    result = merge(files, out)
    console.print(
        kv_table(
            "limo review merge",
            {
                "inputs": ", ".join(str(f) for f in files),
                "lines": result.lines,
                "problems": result.problems,
                "decided (accept/reject)": result.decided,
                "kept from the existing output": result.kept_from_out,
                "conflicts": len(result.conflicts),
                "written": result.out,
            },
        )
    )
    for conflict in result.conflicts:
        console.print(f"[yellow]conflict[/yellow] {conflict}")
