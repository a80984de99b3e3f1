"""Review decisions drive the next `limo curate`: the real command on a small model-free demo recipe (the demo
pool's reference solutions are the candidates), decisions made in headless Chromium with the keyboard, then curate
again. Screenshot: test-artifacts/review-curate.png.

A problem that select dropped for lack of room ("over_target_size") is accepted by a reviewer and must be in the
export after the rerun (the human choice overrides the score); a problem select kept is rejected and must be gone.
"""

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pyarrow.parquet as pq
import pytest
import yaml

from limo.paths import REPO_ROOT
from limo.review.decisions import decisions_path, load_decisions

LIMO = [sys.executable, "-m", "limo.cli"]
RECIPE = {
    "name": "review-curate-test",
    "seed": 0,
    "pool": {"sources": [{"name": "demo", "path": str(REPO_ROOT / "recipes" / "data" / "demo_pool.jsonl")}]},
    "decontaminate": {"enabled": False},
    "difficulty": {"enabled": False},
    "diversity": {"target_size": 10},
    "solutions": {"models": [], "columns": ["solution"]},
    "score": {"length_words": [10, 60, 8000]},
    "select": {"target_size": 4},
    "export": {"formats": ["messages", "hf"], "datacard": False},
}


def curate(recipe: Path, run: Path) -> None:
    proc = subprocess.run([*LIMO, "curate", str(recipe), "--out", str(run)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def exported_ids(run: Path) -> list[str]:
    return [json.loads(x)["id"] for x in (run / "export" / "messages.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_decisions_override_select_on_the_next_curate(tmp_path, browser, open_review, artifacts):
    recipe, run = tmp_path / "recipe.yaml", tmp_path / "run"
    recipe.write_text(yaml.safe_dump(RECIPE))
    curate(recipe, run)
    before = exported_ids(run)
    assert len(before) == 4
    dropped = pq.read_table(run / "09_select" / "dropped.parquet").to_pylist()
    left_out = next(r for r in dropped if r["drop_reason"] == "over_target_size")
    assert left_out["id"] not in before

    server, page = open_review(run, "curate-test")
    # filter the list (subject + search), open the left-out problem, accept its candidate with the keyboard
    assert page.inner_text("#progress-text") == "0 / 10 reviewed"
    page.select_option("#f-subject", left_out["subject"])
    page.keyboard.press("/")
    page.keyboard.type(left_out["id"])
    page.keyboard.press("Escape")
    assert page.locator("tr[data-id]").count() == 1
    page.keyboard.press("Enter")
    page.wait_for_selector("#cand-1")
    assert page.get_attribute("#cand-1", "data-candidate") == left_out["candidate_id"]
    page.keyboard.press("1")
    page.wait_for_selector("#cand-1.accepted")
    page.reload()
    page.wait_for_selector("#cand-1.accepted")  # still there after a reload
    page.screenshot(path=str(artifacts / "review-curate.png"))
    # reject a problem select had kept
    page.goto(server.url + "#/p/" + quote(before[0], safe=""))
    page.wait_for_selector(f'#cand-1[data-candidate^="{before[0]}#"]')
    page.keyboard.press("x")
    page.wait_for_selector("#decision.reject")
    assert page.inner_text("#progress-text") == "2 / 10 reviewed"
    assert browser.errors == []
    assert browser.outside_requests("127.0.0.1") == []

    curate(recipe, run)  # the changed decisions file reruns select and export
    after = exported_ids(run)
    assert left_out["id"] in after and before[0] not in after and len(after) == 4
    decisions = load_decisions(decisions_path(run))
    assert decisions[left_out["id"]].candidate_id == left_out["candidate_id"]
    stats = json.loads((run / "09_select" / "stats.json").read_text())
    assert stats["human_accepted"] == 1 and stats["dropped_by_reason"]["human_rejected"] >= 1
