from fractions import Fraction

import pytest

from tutor.config import PROBLEMS_FILE
from tutor.domain.problems import Problem, ProblemBank
from tutor.domain.steps import UnverifiedLine, parse_step, worked_solution
from tutor.cli import main


@pytest.mark.parametrize(
    "line, expression, value, skill",
    [
        ("3 bids * $50 per bid = $150 added to the cost", "3 * 50", 150, "multiplication"),
        ("Karan's interest is $3,650 × 0.1 = $365.", "3650 * 0.1", 365, "decimals"),
        ("He made $150 selling the cards because 100 + 50 = 150", "100 + 50", 150, "addition"),
        ("Each classroom has 14 boys because 56 boys divided into 4 classrooms equals 14",
         "56 / 4", 14, "division"),
        ("The cards he sold were 2/3 of his collection because 1 - (1/3) = 2/3",
         "1 - ( 1 / 3 )", Fraction(2, 3), "fractions"),
        ("Noah earned $60/large painting x 8 large paintings = $480", "60 * 8", 480,
         "multiplication"),
        ("The room's perimeter is 2(40+9) = 98", "2 * ( 40 + 9 )", 98, "multi-step arithmetic"),
        ("we see that x=220+23-80=163 Post-it notes", "220 + 23 - 80", 163,
         "multi-step arithmetic"),
        ("The tip on the haircuts is $120 x 20% = $24.", "120 * ( 20 / 100 )", 24, "percentages"),
    ],
)
def test_step_lines_parse_into_verified_calculations(line, expression, value, skill):
    step = parse_step(line)
    assert (step.expression, step.value, step.skill) == (expression, value, skill)


def test_percent_results_keep_their_unit():
    step = parse_step("add the probabilities: 20% + 10% = 30%")
    assert (step.value, step.unit, step.amount) == (30, "%", Fraction(3, 10))


def test_a_wrong_calculation_does_not_verify():
    with pytest.raises(UnverifiedLine, match="does not equal 100"):
        parse_step("He caught 200*.55=100 pounds more salmon than trout")


def test_lines_without_a_calculation_are_notes():
    assert parse_step("First, identify the lowest score, which is 71, and remove it.") is None
    assert parse_step("The total length of the river is 4x=80") is None


def test_the_last_step_must_reach_the_final_answer():
    problem = Problem("p", "q", "18", ("5 * 2 = 10", "10 + 2 = 12"))
    assert worked_solution(problem).errors == (
        "the last step gives 10 + 2 = 12, not the final answer 18",
    )


def test_every_bank_problem_verifies_and_at_least_95_percent_are_kept():
    everything = ProblemBank.load(PROBLEMS_FILE, include_excluded=True)
    bank = ProblemBank.load(PROBLEMS_FILE)
    assert len(bank) >= 0.95 * len(everything)
    assert all(p.excluded for p in everything if p.id not in bank.problems)
    assert [p.id for p in bank if not worked_solution(p).verified] == []


def test_problems_check_ends_with_the_verified_count(capsys):
    assert main(["problems", "check"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "verified: 279/279"
    assert any(line.startswith("excluded 5000943: ") for line in lines)
