"""End to end in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) against `limo review` on
127.0.0.1: open the run, filter the list, accept a candidate with the keyboard, reload (the decision is still
there), rerun select + export (the accepted candidate is in the dataset, over the better-scored one), save a
screenshot to test-artifacts/review.png, and check that no request left 127.0.0.1.
"""

import json
from pathlib import Path

import pytest

from limo.review.decisions import decisions_path, load_decisions

PROBLEM = "test/intermediate_algebra/1994.json"
REJECT = "test/algebra/2584.json"

pytestmark = pytest.mark.slow


def rerun_select_export(run_dir: Path) -> Path:
    """Rerun stages 09 select and 10 export on the run's scored candidates, as `limo curate` does after review."""
    from limo.runs import Run, StageContext, stage_stats
    from limo.stages import export, select

    run = Run(run_dir)
    ds = run.load(8, "score")
    for index, name, module, cfg in (
        (9, "select", select, select.Config(target_size=817)),
        (10, "export", export, export.Config(formats=["hf", "messages"], datacard=False)),
    ):
        stage_dir = run.stage_dir(index, name)
        stage_dir.mkdir(parents=True, exist_ok=True)
        ctx = StageContext(run_dir=run.root, stage_dir=stage_dir, generation_cache=run.root / "gen.sqlite")
        result = module.run(ds, cfg, ctx)
        run.save(index, name, result, cfg, f"review-e2e-{name}", stage_stats(len(ds), result, 0.0))
        ds = result.kept
    return run.root / "export"


def exported_pick(export_dir: Path, problem_id: str) -> tuple[str, str]:
    """(candidate_id from the HF export, assistant text from messages.jsonl) for one problem."""
    from datasets import load_from_disk

    hf = load_from_disk(str(export_dir / "hf"))
    cids = [row["candidate_id"] for row in hf if row["id"] == problem_id]
    lines = [json.loads(x) for x in (export_dir / "messages.jsonl").read_text().splitlines()]
    records = [rec for rec in lines if rec["id"] == problem_id]
    assistant = [m["content"] for rec in records for m in rec["messages"] if m["role"] == "assistant"]
    assert len(cids) == 1 and len(assistant) == 1
    return cids[0], assistant[0]


def test_review_in_chromium(review_run, browser, open_review, artifacts):
    from limo.review.data import load_review_data

    candidates = load_review_data(review_run).candidates[PROBLEM]
    best, second = candidates[0], candidates[1]
    assert best["quality_score"] > second["quality_score"]  # accepting #2 must override the score

    # without a decision, select keeps the best-scored candidate
    assert exported_pick(rerun_select_export(review_run), PROBLEM)[0] == best["candidate_id"]

    server, page = open_review(review_run, "e2e")
    # 1. open the run
    assert page.locator("tr[data-id]").count() == 4
    assert page.inner_text("#progress-text") == "0 / 4 reviewed"

    # 2. filter the list: subject, then "not reviewed"
    page.select_option("#f-subject", "Intermediate Algebra")
    page.select_option("#f-reviewed", "no")
    assert page.locator("tr[data-id]").count() == 1
    assert page.inner_text("#shown") == "1 of 4 shown"
    assert page.get_attribute("tr[data-id]", "data-id") == PROBLEM
    assert "subject=Intermediate+Algebra" in page.url

    # 3. open it and accept candidate 2 with the keyboard
    page.keyboard.press("Enter")
    page.wait_for_selector(".cand")
    assert page.locator(".cand").count() == len(candidates)
    assert page.locator(".katex").count() > 0  # LaTeX rendered by the bundled KaTeX
    assert page.locator(".resp mark.hl").count() > 0  # feature evidence highlighted
    page.keyboard.press("2")
    page.wait_for_selector("#cand-2.accepted")
    assert load_decisions(decisions_path(review_run))[PROBLEM].candidate_id == second["candidate_id"]

    # 4. reload: the decision is still there
    page.reload()
    page.wait_for_selector("#cand-2.accepted")
    assert page.locator(".cand.accepted").count() == 1
    assert "accepted #2" in page.inner_text("#decision")
    assert page.inner_text("#progress-text") == "1 / 4 reviewed"
    page.screenshot(path=str(artifacts / "review.png"))
    page.keyboard.press("g")
    page.wait_for_selector("table.problems")
    assert page.locator("tr[data-id]").count() == 0  # filter "not reviewed" now hides it
    assert page.inner_text("#shown") == "0 of 4 shown"
    page.select_option("#f-reviewed", "accepted")
    assert "accepted #2" in page.inner_text(f'tr[data-id="{PROBLEM}"]')
    page.screenshot(path=str(artifacts / "review-list.png"))

    # reject another problem with x and annotate it with n
    page.goto(server.url + "#/?subject=Algebra")
    page.wait_for_selector(f'tr[data-id="{REJECT}"]')
    page.keyboard.press("Enter")
    page.wait_for_selector(".cand")
    page.keyboard.press("x")
    page.wait_for_selector("#decision.reject")
    page.keyboard.press("n")
    page.keyboard.type("both candidates skip the domain check")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("ul.notes li")
    assert "2 / 4 reviewed" == page.inner_text("#progress-text")
    assert browser.errors == []

    # 5. rerun select + export: the human choice is in the dataset
    export_dir = rerun_select_export(review_run)
    cid, assistant = exported_pick(export_dir, PROBLEM)
    assert cid == second["candidate_id"]
    assert assistant == second["text"]
    exported_ids = [json.loads(x)["id"] for x in (export_dir / "messages.jsonl").read_text().splitlines()]
    assert REJECT not in exported_ids and len(exported_ids) == 3
    stats = json.loads((review_run / "09_select" / "stats.json").read_text())
    assert stats["dropped_by_reason"]["human_rejected"] == 2 and stats["human_accepted"] == 1
    rejected = load_decisions(decisions_path(review_run))[REJECT]
    assert rejected.action == "reject" and rejected.notes[0].text == "both candidates skip the domain check"

    # the page works offline: nothing left 127.0.0.1
    assert browser.requests, "the browser made no requests?"
    assert browser.outside_requests("127.0.0.1") == []
    assert any("/static/katex/fonts/" in u for u in browser.requests)  # fonts came from the package, not a CDN
    assert (artifacts / "review.png").stat().st_size > 10_000
