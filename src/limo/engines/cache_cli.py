"""`limo cache check` and `limo cache repair`: the command-line side of cache_repair.py."""

from pathlib import Path

from limo.console import console, kv_table
from limo.engines.cache_repair import check_cache, repair_cache
from limo.errors import LimoError
from limo.paths import default_generation_cache


def run_check(path: Path | None) -> dict:
    """Print the check; a damaged file is a LimoError (exit 2) that names the repair command."""
    path = path or default_generation_cache()
    report = check_cache(path)
    console.print(kv_table("limo cache check", {**report, "problems": "; ".join(report["problems"]) or "none"}))
    if not report["ok"]:
        raise LimoError(
            f"{path}: the generation cache is damaged ({' '.join(report['problems'][-1].split())[:200]}); "
            f"{report['readable_rows']} rows are "
            f"readable; run `limo cache repair {path}` to keep them"
        )
    return report


def run_repair(path: Path | None) -> dict:
    path = path or default_generation_cache()
    before = check_cache(path)
    report = repair_cache(path)
    after = check_cache(path)
    summary = {**report, "was damaged": not before["ok"], "now ok": after["ok"], "rows now": after["readable_rows"]}
    console.print(kv_table("limo cache repair", summary))
    return summary
