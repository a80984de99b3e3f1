"""A small, realistic curation run for the review tests: RUN/08_score/ written by the real score stage.

Candidates are real text: four MATH500 problems (four subjects), each with the Sky-T1-27B trace from
shared/data/traces (two split R1-style into reasoning + answer, two kept whole), the MATH reference solution, and
for two problems the trace's solution part alone. These are benchmark problems: used here only to exercise the
review page, never to train. Build one by hand with:

    .venv/bin/python -c "import runpy; runpy.run_path('tests/review/conftest.py')['build_review_run']('runs/rv')"
"""

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

PROBLEM_IDS = (
    "test/precalculus/807.json",
    "test/intermediate_algebra/1994.json",
    "test/algebra/2584.json",
    "test/number_theory/864.json",
)
TRACE_FILE = "traces/sky_t1_math_correct_5k_27b_math500.jsonl"


def _between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def candidate_rows(data: Path) -> list[dict]:
    from limo.grading import extract_answer

    bench = {}
    with (data / "benchmarks" / "math500.jsonl").open() as f:
        for line in f:
            row = json.loads(line)
            bench[row["id"]] = row
    traces = {}
    with (data / TRACE_FILE).open() as f:
        for line in f:
            row = json.loads(line)
            if row["benchmark_id"] in PROBLEM_IDS:
                traces[row["benchmark_id"]] = row
    rows = []
    for n, pid in enumerate(PROBLEM_IDS):
        b, t = bench[pid], traces[pid]
        problem = {
            "id": pid,
            "problem": b["problem"],
            "answer": b["answer"],
            "solution": b["solution"],
            "source": "math500",
            "subject": b["subject"],
            "level": b["level"],
            "difficulty_tier": "hard" if b["level"] >= 4 else "medium",
        }
        trace = t["trace"]
        solution_part = _between(trace, "<|begin_of_solution|>", "<|end_of_solution|>")
        if n % 2 == 0:  # R1-style: reasoning kept apart from the answer
            thought = _between(trace, "<|begin_of_thought|>", "<|end_of_thought|>")
            first = {"response": solution_part, "reasoning": thought}
        else:
            first = {"response": trace, "reasoning": None}
        cands = [
            ("sky-t1-27b", first),
            ("math500-reference", {"response": b["solution"], "reasoning": None}),
        ]
        if n < 2:
            cands.append(("sky-t1-27b-solution-only", {"response": solution_part, "reasoning": None}))
        for model, text in cands:
            body = (text["reasoning"] or "") + text["response"]
            rows.append(
                {
                    **problem,
                    "candidate_id": f"{pid}#{model}#0",
                    "candidate_model": model,
                    **text,
                    "finish_reason": "stop",
                    "completion_tokens": len(body.split()),
                    "verdict": "correct",
                    "extracted": extract_answer(text["response"]),
                    "correct": True,
                }
            )
    return rows


def build_review_run(run_dir: str | Path, data: Path | None = None) -> Path:
    """Write RUN/08_score (data, dropped, stats, config, done marker) by running the real score stage."""
    from limo.paths import data_dir
    from limo.runs import Run, StageContext, rows_to_dataset, stage_stats
    from limo.stages import score

    run = Run(run_dir)
    rows = candidate_rows(data or data_dir())
    cfg = score.Config()
    stage_dir = run.stage_dir(8, "score")
    stage_dir.mkdir(parents=True, exist_ok=True)
    ctx = StageContext(run_dir=run.root, stage_dir=stage_dir, generation_cache=run.root / "gen.sqlite")
    result = score.run(rows_to_dataset(rows), cfg, ctx)
    run.save(8, "score", result, cfg, "review-fixture", stage_stats(len(rows), result, 0.0))
    return run.root


@pytest.fixture
def review_run(tmp_path, shared_data) -> Path:
    return build_review_run(tmp_path / "run", shared_data)


CHROMIUM = os.environ.get("LIMO_CHROMIUM", "/usr/bin/chromium")  # the variable lets a test point at a missing one
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass
class Browser:
    """A headless Chromium page plus every URL it requested and every uncaught page error."""

    page: Any
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def outside_requests(self, host: str = "127.0.0.1") -> list[str]:
        return [
            u for u in self.requests if urlsplit(u).scheme not in ("data", "about") and urlsplit(u).hostname != host
        ]


@pytest.fixture
def artifacts() -> Path:
    """test-artifacts/ at the repository root (gitignored): screenshots of the review page."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def browser_required(env: dict[str, str] | None = None) -> bool:
    """CI sets CI=true (GitHub Actions, GitLab, .ci/run): there a missing browser is a failure, not a skip."""
    value = (os.environ if env is None else env).get("CI", "")
    return value.strip().lower() not in ("", "0", "false", "no")


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Debian's chromium driven by Playwright (never `playwright install`). Without chromium the test is skipped
    on a developer machine, and FAILS in CI (CI=true), so CI never passes without running the browser test."""
    if not Path(CHROMIUM).exists():
        missing = f"Debian chromium is not installed at {CHROMIUM} (run scripts/install-browser.sh or `make setup`)"
        if browser_required():
            pytest.fail(f"CI: the browser test must run: {missing}", pytrace=False)
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = chromium.new_context(viewport={"width": 1500, "height": 1000})
        state = Browser(page=None)
        context.on("request", lambda r: state.requests.append(r.url))
        state.page = context.new_page()
        state.page.on("pageerror", lambda e: state.errors.append(str(e)))
        try:
            yield state
        finally:
            chromium.close()


@pytest.fixture
def open_review(browser):
    """open_review(run, reviewer) -> (server, page): `limo review`'s server on the run, its page loaded in Chromium
    with the problem list shown; the server stops after the test."""
    from limo.review.server import make_server, start_in_thread

    servers = []

    def open_page(run: Path, reviewer: str):
        server = make_server(run, port=0, reviewer=reviewer)
        start_in_thread(server)
        servers.append(server)
        browser.page.goto(server.url)
        browser.page.wait_for_selector("tr[data-id]")
        return server, browser.page

    yield open_page
    for server in servers:
        server.shutdown()
        server.server_close()
