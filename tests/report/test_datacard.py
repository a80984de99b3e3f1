"""The data card: counts per stage and reason, candidate accounting that balances, distributions, PNGs, examples.

Runs the candidate stages 06-10 through the real run store (limo.runs.run_stages) on real MATH train problems.
Candidates come from two pool columns: the reference solution (correct) and a corrupted copy whose boxed answer is
wrong (dropped as incorrect), plus a third column that is sometimes empty, so every drop path is exercised.
"""

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from datasets import Dataset

sys.path.insert(0, str(Path(__file__).parent.parent / "stages"))
from helpers_curation2 import math_train_rows  # noqa: E402

from limo.review.decisions import DecisionLog, decisions_path  # noqa: E402
from limo.runs import Run, Stage, StageContext, run_stages  # noqa: E402
from limo.stages import export, score, select, solutions, verify  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def pool(shared_data: Path) -> list[dict]:
    rows = math_train_rows(shared_data, 12)
    for i, r in enumerate(rows):
        r["wrong"] = r["solution"].replace("\\boxed{", "\\boxed{99999+", 1)
        r["terse"] = f"The answer is $\\boxed{{{r['answer']}}}$." if i % 3 else None
    return rows


def run_candidate_stages(tmp_path: Path, shared_data: Path, target: int = 5) -> Path:
    run_dir = tmp_path / "run"
    stages = [
        Stage("solutions", solutions.Config(columns=["solution", "wrong", "terse"]), solutions.run),
        Stage("verify", verify.Config(), verify.run),
        Stage("score", score.Config(), score.run),
        Stage("select", select.Config(target_size=target), select.run),
        Stage("export", export.Config(), export.run),
    ]
    run = Run(run_dir)
    run_stages(
        run,
        stages,
        Dataset.from_list(pool(shared_data)),
        lambda d: StageContext(run_dir=run_dir, stage_dir=d, generation_cache=tmp_path / "gen.sqlite"),
    )
    return run_dir


def test_datacard_counts_balance_and_files_exist(tmp_path, shared_data):
    DecisionLog(decisions_path(tmp_path / "run"), reviewer="t").append(
        math_train_rows(shared_data, 1)[0]["id"], "reject"
    )
    run_dir = run_candidate_stages(tmp_path, shared_data)
    card = json.loads((run_dir / "datacard.json").read_text())
    acc = card["candidate_accounting"]
    # 12 references + 12 wrong copies + 8 terse answers
    assert acc["generated"] == 32
    assert acc["balanced"] is True
    assert acc["generated"] == acc["final"] + acc["dropped_total"]
    # the card's drop counts equal the rows actually stored in each stage's dropped.parquet, reason by reason
    for stage, reasons in acc["dropped"].items():
        stage_dir = next(run_dir.glob(f"*_{stage}"))
        stored = pq.read_table(stage_dir / "dropped.parquet").to_pylist() if reasons else []
        counted: dict[str, int] = {}
        for r in stored:
            counted[r["drop_reason"]] = counted.get(r["drop_reason"], 0) + 1
        assert counted == reasons, stage
    assert acc["dropped"]["verify"] == {"incorrect": 12}
    assert acc["dropped"]["select"]["human_rejected"] == 1  # problem 0: only its reference verifies (no terse)
    assert acc["dropped"]["select"]["over_target_size"] == 11 - 5
    assert acc["final"] == 5
    # stage table: every stage but the expanding one conserves rows
    for s in card["stages"]:
        if not s["dir"].endswith("_solutions"):
            assert s["rows_in"] == s["rows_out"] + s["dropped"], s
    md = (run_dir / "datacard.md").read_text()
    for section in ("## Counts per stage", "## Candidate accounting", "### subject", "### level", "## Examples"):
        assert section in md
    assert "**balanced**" in md
    assert md.count("**Problem**") == 3
    for png in ("tokens.png", "scores.png"):
        data = (run_dir / "datacard" / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert sum(card["distributions"]["subject"].values()) == 5
    # resumable: a second run reuses every stage and writes the same export
    before = (run_dir / "export" / "messages.jsonl").read_text()
    run_candidate_stages(tmp_path, shared_data)
    assert (run_dir / "export" / "messages.jsonl").read_text() == before


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the whole demo curation on a shared 2-core CPU: minutes, more under load
def test_demo_recipe_end_to_end(tmp_path):
    """recipes/demo.yaml (embedded SmolLM2 + the demo pool + reference solutions) -> non-empty export + data card."""
    from datasets import load_from_disk

    from limo.curate import run_curate
    from limo.io import read_jsonl
    from limo.recipes import load_recipe

    recipe = load_recipe(REPO / "recipes" / "demo.yaml").curate
    export_dir = run_curate(recipe, tmp_path / "run", cache_path=tmp_path / "gen.sqlite")
    assert export_dir == tmp_path / "run" / "export"
    ds = load_from_disk(str(export_dir / "hf"))
    assert 0 < len(ds) <= recipe.select.target_size
    assert len(read_jsonl(export_dir / "messages.jsonl")) == len(ds)
    card = json.loads((tmp_path / "run" / "datacard.json").read_text())
    assert card["final_size"] == len(ds)
    assert card["candidate_accounting"]["balanced"] is True
    sources = json.loads((tmp_path / "run" / "06_solutions" / "stats.json").read_text())["candidates_by_source"]
    assert set(sources) == {"column:solution", "smollm2-135m"}  # both reference solutions and model candidates
    assert (tmp_path / "run" / "datacard.md").read_text().count("**Problem**") == min(3, len(ds))
