"""Metrics against hand-computed cases: unbiased pass@k, maj@k, Wilson and bootstrap CIs.

.venv/bin/pytest tests/eval/test_metrics.py
"""

import math

import pytest

from limo.eval.metrics import (
    bootstrap_ci,
    ks_for,
    maj_at_k,
    majority_answer,
    pass_at_k,
    problem_metrics,
    wilson_ci,
)


@pytest.mark.parametrize(
    "n, c, k, expected",
    [
        (5, 2, 2, 1 - 3 / 10),  # 1 - C(3,2)/C(5,2)
        (4, 1, 1, 0.25),
        (16, 3, 4, 1 - 715 / 1820),  # 1 - C(13,4)/C(16,4)
        (16, 0, 16, 0.0),
        (3, 0, 2, 0.0),
        (3, 2, 2, 1.0),  # n - c < k: every k-subset holds a correct sample
        (10, 5, 1, 0.5),
        (8, 1, 4, 0.5),  # 1 - C(7,4)/C(8,4) = 1 - 35/70
    ],
)
def test_pass_at_k_closed_form(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)
    closed = 1 - math.comb(n - c, k) / math.comb(n, k) if n - c >= k else 1.0
    assert pass_at_k(n, c, k) == pytest.approx(closed, abs=1e-12)


def test_pass_at_k_rejects_bad_arguments():
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)


def test_ks_for():
    assert ks_for(1) == [1]
    assert ks_for(16) == [1, 2, 4, 8, 16]
    assert ks_for(6) == [1, 2, 4, 6]


def test_majority_vote_normalises_and_breaks_ties_by_first_occurrence():
    assert majority_answer(["1", "2", "2", None]) == 1
    assert majority_answer(["\\frac{1}{2}", "\\dfrac{1}{2}", "3", "3"]) == 0  # tie 2-2: the earlier answer wins
    assert majority_answer([None, None]) is None
    assert maj_at_k(["1", "2", "2", None], [True, False, False, False], 4) == 0.0
    assert maj_at_k(["1", "2", "2", None], [True, False, False, False], 1) == 1.0
    assert maj_at_k(["$5$", "5", "7"], [True, True, False], 3) == 1.0


def test_wilson_interval_hand_computed():
    lo, hi = wilson_ci(0, 6)
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(0.39034, abs=1e-4)
    lo, hi = wilson_ci(5, 10)  # centre 0.5, half = z*sqrt(.025+z^2/400)/(1+z^2/10)
    z = 1.959963984540054
    half = z * math.sqrt(0.25 / 10 + z * z / 400) / (1 + z * z / 10)
    assert (lo, hi) == pytest.approx((0.5 - half, 0.5 + half))


def test_bootstrap_is_seeded_and_brackets_the_mean():
    scores = [0, 1, 1, 0, 1, 0.5, 0.25, 1, 0, 1]
    a, b = bootstrap_ci(scores, seed=3), bootstrap_ci(scores, seed=3)
    assert a == b
    assert a[0] <= sum(scores) / len(scores) <= a[1]
    assert bootstrap_ci([0.4] * 7) == pytest.approx((0.4, 0.4))


def test_problem_metrics_sampled():
    correct = [[True, False, False, True], [False] * 4, [True] * 4]
    answers = [["1", "2", "2", "1"], ["x", "y", None, None], ["3", "3", "3", "3"]]
    m = problem_metrics(correct, answers)
    assert m["n"] == 4 and m["problems"] == 3
    assert m["score"]["metric"] == "avg@4"
    assert m["score"]["value"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert m["pass@k"]["2"]["value"] == pytest.approx((pass_at_k(4, 2, 2) + 0 + 1) / 3)
    assert m["pass@k"]["4"]["value"] == pytest.approx(2 / 3)
    # maj@4: problem 1 ties "1" vs "2" -> "1" (first) is correct; problem 2 wrong; problem 3 right
    assert m["maj@k"]["4"]["value"] == pytest.approx(2 / 3)
    assert m["score"]["ci_method"] == "bootstrap"


def test_problem_metrics_greedy_uses_wilson():
    m = problem_metrics([[True], [False], [False], [True]], [["1"], ["2"], [None], ["4"]])
    assert m["score"]["metric"] == "pass@1" and m["score"]["value"] == 0.5
    assert m["score"]["ci_method"] == "wilson"
    assert m["score"]["ci"] == pytest.approx(list(wilson_ci(2, 4)))
    assert list(m["maj@k"]) == ["1"] and m["maj@k"]["1"]["value"] == 0.5
