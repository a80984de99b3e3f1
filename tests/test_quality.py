"""limo.quality (extended) and limo.quality_limo (the paper's formula) on real text (Sky-T1 traces, benchmark
problems), the ranking check, and the check that docs/QUALITY.md reports the AUCs this code measures."""

import json
import math
import re

import pytest

from limo.io import read_jsonl
from limo.paths import REPO_ROOT
from limo.quality import (
    DEFAULT_WEIGHTS,
    FEATURES,
    adaptive_granularity,
    dominant_script,
    evidence_json,
    exploration,
    language_consistency,
    level_fixed,
    levels_by_quantile,
    rule_score,
    score_text,
    self_verification,
    split_steps,
    tail_repetition,
    truncation,
)
from limo.quality_limo import LIMO_WEIGHTS, limo_scores, min_max, raw_features
from limo.report.quality_eval import auc, profiles_report, ranking_report, score_rows, trace_rows

FINISHED_ID = "Sky-T1-math-correct-5K-14B/amc-2023-12A-10"  # finished, correct, verifies by substitution
LOOP_ID = "Sky-T1-math-correct-5K-32B/aime-2024-I-10"  # cut off after 150k characters of "wait"/"alternatively"


@pytest.fixture(scope="module")
def traces(shared_data):
    return {r["id"]: r for r in trace_rows(shared_data)}


def test_self_verification_finds_the_checks_in_a_real_trace(traces):
    text = traces[FINISHED_ID]["trace"]
    f = self_verification(text)
    found = [text[s:e].lower() for s, e in f.evidence]
    assert f.detail["count"] >= 3 and 0.5 < f.score < 1.0
    assert any("check" in x for x in found) and "verification" in found
    # every span is a real match inside the text
    assert all(0 <= s < e <= len(text) for s, e in f.evidence)


def test_exploration_counts_markers_and_damps_runaway_loops(traces):
    finished = exploration(traces[FINISHED_ID]["trace"])
    loop = exploration(traces[LOOP_ID]["trace"])
    assert finished.detail["count"] >= 5
    assert loop.detail["count"] > 10 * finished.detail["count"]
    assert loop.detail["per_1k_words"] > 25  # the loop is dense in "wait"
    # without the runaway damping the loop would saturate near 1.0
    assert loop.score < loop.detail["count"] / (loop.detail["count"] + 4.0)
    texts = {traces[LOOP_ID]["trace"][s:e].lower() for s, e in loop.evidence}
    assert "wait" in texts


def test_truncation_separates_a_finished_trace_from_a_cut_off_loop(traces):
    done = truncation(traces[FINISHED_ID]["trace"])
    cut = truncation(traces[LOOP_ID]["trace"])
    assert done.score == 1.0
    assert cut.score < 0.25 and cut.detail["tail_repeat"] > 0.5
    assert truncation(traces[FINISHED_ID]["trace"], finish_reason="length").score == 0.0
    assert tail_repetition(traces[FINISHED_ID]["trace"]) < 0.1


def test_adaptive_granularity_depends_on_difficulty(traces):
    # a short MATH500 level-1 style trace: fine for an easy problem, too few steps for a hard one
    short = min((r for r in traces.values() if r["finished"]), key=lambda r: len(r["trace"]))
    easy = adaptive_granularity(short["trace"], difficulty=0.0)
    hard = adaptive_granularity(short["trace"], difficulty=1.0)
    assert easy.detail["steps"] == len(split_steps(short["trace"]))
    assert easy.score >= hard.score
    assert len(easy.evidence) == min(3, easy.detail["steps"])


def test_language_consistency_flags_a_mixed_language_text(shared_data, traces):
    zh = next(
        r for r in read_jsonl(shared_data / "benchmarks" / "gaokao.jsonl") if dominant_script(r["problem"]) == "cjk"
    )
    english = traces[FINISHED_ID]["trace"]
    assert language_consistency(english, traces[FINISHED_ID]["problem"]).score == 1.0
    # an English solution to a Chinese problem is inconsistent; a Chinese aside inside English text is found
    assert language_consistency(english, zh["problem"]).score < 0.1
    mixed = english[:2000] + "\n" + zh["problem"][:60] + "\n" + english[2000:4000]
    f = language_consistency(mixed, traces[FINISHED_ID]["problem"])
    assert 0.5 < f.score < 1.0 and f.evidence
    s, e = f.evidence[0]
    assert dominant_script(mixed[s:e]) == "cjk"


def test_score_text_all_features_in_range_and_evidence_is_json(traces):
    for rid in (FINISHED_ID, LOOP_ID):
        feats = score_text(traces[rid]["trace"], problem=traces[rid]["problem"], difficulty=0.8)
        assert set(feats) == set(FEATURES)
        assert all(0.0 <= f.score <= 1.0 for f in feats.values())
        ev = json.loads(evidence_json(feats))
        assert set(ev) == set(FEATURES)
        n = len(traces[rid]["trace"])
        assert all(0 <= s < e <= n for spans in ev.values() for s, e in spans)


def test_rule_score_is_a_weighted_mean():
    scores = dict.fromkeys(FEATURES, 0.0)
    scores["truncation"] = 1.0
    assert rule_score(scores, {"truncation": 1.0, "length": 1.0}) == 0.5
    assert math.isclose(rule_score(dict.fromkeys(FEATURES, 0.7), DEFAULT_WEIGHTS), 0.7)
    with pytest.raises(ValueError):
        rule_score(scores, {"truncation": 0.0})


def test_levels_fixed_and_quantile():
    assert [level_fixed(x, [0.2, 0.4, 0.6, 0.8]) for x in (0.1, 0.2, 0.5, 0.79, 0.95)] == [1, 2, 3, 4, 5]
    levels = levels_by_quantile([i / 10 for i in range(10)])
    assert levels == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert levels_by_quantile([0.5] * 4) == [1, 1, 1, 1]  # ties share a level


def test_auc():
    assert auc([3, 4], [1, 2]) == 1.0
    assert auc([1], [1]) == 0.5
    assert auc([1, 2], [3, 4]) == 0.0


def test_rule_scores_rank_finished_above_truncated_and_correct_above_incorrect(shared_data):
    """Acceptance (issue 5): on the Sky-T1 traces the rule scores rank finished > truncated, correct > incorrect."""
    report = ranking_report(score_rows(trace_rows(shared_data)))
    assert report["n"] == 570
    for label in ("finished", "correct"):
        entry = report[label]
        assert entry["mean_pos"] > entry["mean_neg"], label
        assert entry["auc"] > 0.75, (label, entry["auc"])


def test_spans_are_regex_matches_of_the_text(traces):
    text = traces[FINISHED_ID]["trace"]
    f = self_verification(text)
    for s, e in f.evidence:
        assert re.search(r"(?i)check|verif|match|back|correct|sure|confirm", text[s:e])


def test_limo_formula_counts_per_word_and_normalises_over_the_set():
    text = "Let me check this. Perhaps x = 2, therefore y = 4. Since y = 4 we verify: it checks out."
    raw, evidence = raw_features(text)
    words = len(text.split())
    assert raw["elaborated_reasoning"] == words
    assert raw["self_verification"] == pytest.approx(3 / words)  # check, verify, checks
    assert raw["exploratory_approach"] == pytest.approx(1 / words)  # perhaps
    assert raw["adaptive_granularity"] == pytest.approx(2 / words)  # therefore, since
    assert [text[s:e].lower() for s, e in evidence["adaptive_granularity"]] == ["therefore", "since"]
    assert min_max([2.0, 4.0, 3.0]) == [0.0, 1.0, 0.5] and min_max([5.0, 5.0]) == [0.0, 0.0]
    short, long = "We check it.", "We check it. " + "Therefore it holds since a step follows. " * 20
    a, b = limo_scores([short, long])
    assert b["features"]["elaborated_reasoning"] == 1.0 and a["features"]["elaborated_reasoning"] == 0.0
    assert a["features"]["self_verification"] == 1.0  # 1 hit in 3 words beats 1 hit in 143: per-word density
    assert b["score"] == pytest.approx(LIMO_WEIGHTS["elaborated_reasoning"] + LIMO_WEIGHTS["adaptive_granularity"])


def test_docs_report_the_auc_this_code_measures(shared_data):
    """docs/QUALITY.md's profile table is the output of limo.report.quality_eval on these traces (3 decimals)."""
    report = profiles_report(trace_rows(shared_data))
    doc = (REPO_ROOT / "docs" / "QUALITY.md").read_text()
    for profile, entry in report.items():
        row = re.search(rf"^\| `{profile}` \|(.*AUC.*)$", doc, re.M)
        assert row, f"docs/QUALITY.md has no row for profile {profile}"
        documented = [float(x) for x in re.findall(r"AUC (\d\.\d{3})", row.group(1))]
        measured = [entry["finished"]["auc"], entry["correct"]["auc"], entry["correct_within_finished"]["auc"]]
        assert documented == [round(x, 3) for x in measured], profile
