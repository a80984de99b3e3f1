"""The two grading rules (`boxed`, the authors'; `extended`, ours), the grader gaps fixed in issue 13, and
multiple-choice grading. Pure functions in-process (`grade_item`), plus one pass through the worker pool.

.venv/bin/pytest tests/grading/test_rules.py
"""

import pytest

from limo.grading import boxed_answer, extract_answer, grade_item, grade_many
from limo.grading.choice import grade_choice


# ------------------------------------------------------------------------------------- rule `boxed` (the authors')
@pytest.mark.parametrize(
    "text, expected",
    [
        ("so \\boxed{42}.", "42"),
        ("first \\boxed{1} then \\boxed{2}", "2"),
        ("\\boxed{1}, \\boxed{2}, \\boxed{3}", "3"),  # the authors read the last box only
        ("\\boxed 5$ done", "5"),
        ("The answer is 7.", None),  # no box: no answer (wrong)
        ("\\boxed{a} and a last box that never closes \\boxed{b", None),
        ("\\boxed{\\frac{1}{2}.}", "\\frac{1}{2}"),  # trailing period dropped, as the authors
        ("Final answer: 4, after \\boxed{3}", "3"),
    ],
)
def test_boxed_rule_extraction(text, expected):
    assert boxed_answer(text) == expected


def test_boxed_rule_no_box_is_no_answer_and_extended_reads_prose():
    text = "Therefore, the remainder is 4."
    assert grade_item(text, "4", rule="boxed") == ("no_answer", None, None)
    assert grade_item(text, "4", rule="extended") == ("correct", "4", "no_answer")


# ------------------------------------------------------------------------------------- grader gaps (rule extended)
@pytest.mark.parametrize(
    "text, expected",
    [
        ("The solutions are \\boxed{1}, \\boxed{2}, \\boxed{3}.", "1, 2, 3"),  # several boxes = one answer
        ("$\\boxed{1}$ and $\\boxed{2}$", "1, 2"),
        ("\\boxed{1} is wrong, so we try again and get \\boxed{2}", "2"),  # words between: only the last box
        ("\\boxed{\\boxed{3}}", "3"),  # nested: the inner box
        ("\\boxed{3}\n\n\\boxed{3}", "3"),  # a repeated box is one answer
        ("we get \\boxed{3}.\n\nWait, that is off by one. Final answer: 4", "4"),  # a later final answer wins
        ("Answer $9$", "9"),
        ("**Answer:** 12", "12"),
        ("$x \\geq 5$ is the solution.", "x \\geq 5"),
        ("Therefore the probability is 2/3.", "2/3"),
        ("So the answer is 5.<|im_end|>", "5"),
        ("Final answer: 7<|eot_id|>", "7"),
        ("Thus the solution is x <= 2.", "x <= 2"),  # the relation, not its right-hand side
    ],
)
def test_extended_rule_gaps(text, expected):
    assert extract_answer(text) == expected


def test_looping_cut_off_response_is_not_credited_from_its_last_line():
    loop = "So, the total is 720 - 240 = 480.\n\n" * 4
    assert extract_answer("Let me count.\n" + loop) is None
    assert extract_answer("Let me count.\nSo, the total is 720 - 240 = 480.") == "480"


@pytest.mark.parametrize(
    "pred, gold, verdict",
    [
        ("[2.6667, 5)", "[\\frac{8}{3}, 5)", "correct"),  # the decimal tolerance applies inside an interval
        ("2.6667", "\\frac{8}{3}", "correct"),  # as it does alone
        ("[2.5, 5)", "[\\frac{8}{3}, 5)", "incorrect"),
        ("(2.6667, 5]", "[\\frac{8}{3}, 5)", "incorrect"),  # other brackets: another interval
        ("x \\le 2", "2", "incorrect"),  # a relation is not its right-hand side
        ("1, 2, 3", "\\{1,2,3\\}", "correct"),
    ],
)
def test_comparison_gaps(pred, gold, verdict):
    assert grade_item(f"\\boxed{{{pred}}}", gold)[0] == verdict


# ------------------------------------------------------------------------------------- multiple choice (GPQA)
CHOICES = ["10^-4 ev", "10^-8 ev", "10^-11 ev", "10^-9 ev"]


@pytest.mark.parametrize(
    "response, verdict",
    [
        ("... so the energy difference must be large. \\boxed{A}", "correct"),
        ("\\boxed{(A)}", "correct"),
        ("\\boxed{A. 10^-4 ev}", "correct"),
        ("The answer is (A).", "correct"),
        ("answer: A", "correct"),
        ("Only the first option resolves them.\n(A)", "correct"),
        ("The energy difference is \\boxed{10^-4 ev}", "correct"),  # the full text of the right option
        ("The energy difference is \\boxed{10^-9 ev}", "incorrect"),  # another option's text never counts
        ("\\boxed{D}", "incorrect"),
        ("The answer is (B).", "incorrect"),
        ("\\boxed{F}", "incorrect"),  # not one of the options
        ("I am not sure which one.", "no_answer"),
        ("", "no_answer"),
    ],
)
def test_multiple_choice_extended(response, verdict):
    assert grade_choice(response, "A", CHOICES, "extended")[0] == verdict


def test_multiple_choice_boxed_rule_reads_only_the_last_box():
    assert grade_choice("The answer is (A).", "A", CHOICES, "boxed")[0] == "no_answer"
    assert grade_choice("\\boxed{A}", "A", CHOICES, "boxed") == ("correct", "A")
    assert grade_choice("\\boxed{10^-4 ev}", "A", CHOICES, "boxed")[0] == "correct"


def test_pool_grades_multiple_choice_and_both_rules():
    items = [("\\boxed{B}", "B", ["x", "y", "z", "w"]), ("The answer is 5.", "5"), ("\\boxed{5}", "5")]
    ext = grade_many(items, workers=1)
    assert [g.verdict for g in ext] == ["correct", "correct", "correct"]
    assert [g.boxed_verdict for g in ext] == ["correct", "no_answer", "correct"]
    boxed = grade_many(items, workers=1, rule="boxed")
    assert [g.verdict for g in boxed] == ["correct", "no_answer", "correct"]
    assert all(g.rule == "boxed" and g.boxed_verdict is None for g in boxed)
    with pytest.raises(ValueError, match="unknown grading rule"):
        grade_many(items, rule="lenient")
