"""Asking a teacher model for a worked solution, and keeping it only if every step verifies."""

from __future__ import annotations

import dataclasses

from tutor.domain.mathdial import parse_ground_truth
from tutor.domain.problems import Problem
from tutor.domain.prompting import ChatMessage
from tutor.domain.steps import worked_solution

SOLVE_PROMPT = """\
Solve this math word problem step by step. Write one calculation per line in the form \
"<what it finds>: <calculation> = <result>", using only numbers and + - * / ( ). \
On the last line write only the final answer as a number.

Problem: {question}"""


def solution_request(problem: Problem) -> list[ChatMessage]:
    return [ChatMessage("user", SOLVE_PROMPT.format(question=problem.question))]


def with_verified_solution(problem: Problem, teacher_text: str) -> Problem | None:
    """The problem with the teacher's solution, if SymPy verifies every step and the answer."""
    solution, answer = parse_ground_truth(teacher_text)
    candidate = dataclasses.replace(problem, solution=solution, answer=answer.strip().rstrip("."))
    return candidate if worked_solution(candidate).verified else None
