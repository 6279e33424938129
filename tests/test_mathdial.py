import json
from pathlib import Path

import pytest

from tutor.config import DIALOGUES_DIR, PROBLEMS_FILE
from tutor.domain.dialogues import MOVES, read_dialogues
from tutor.domain.mathdial import apply_repairs, parse_conversation, parse_ground_truth, read_mathdial
from tutor.domain.problems import ProblemBank

SHARED_MATHDIAL = Path(__file__).resolve().parents[2] / "shared/data/mathdial/dialogues.jsonl"


def test_ground_truth_splits_steps_from_final_answer():
    steps, answer = parse_ground_truth("3 bids * $50 = $150.\nSo $200 + $300 = $500.\n 500")
    assert steps == ("3 bids * $50 = $150.", "So $200 + $300 = $500.")
    assert answer == "500"


def test_conversation_turns_get_roles_moves_and_lose_speaker_prefixes():
    turns = parse_conversation(
        "Teacher: (generic)Hi Ayisha, talk me through it|EOM|Student: I added them.|EOM|"
        "Mariana: Oh, I see.|EOM|Teacher: (probing) Why did you add?"
    )
    assert [(t.role, t.move, t.text) for t in turns] == [
        ("teacher", "generic", "Hi Ayisha, talk me through it"),
        ("learner", None, "I added them."),
        ("learner", None, "Oh, I see."),
        ("teacher", "probing", "Why did you add?"),
    ]


def test_shipped_bank_has_every_problem_and_every_labelled_teacher_turn():
    bank = ProblemBank.load(PROBLEMS_FILE, include_excluded=True)
    dialogues = list(read_dialogues(DIALOGUES_DIR / "mathdial.jsonl"))
    assert len(bank) == 280
    assert len(dialogues) == 409
    assert all(d.problem_id in bank.problems for d in dialogues)
    teacher_turns = [t for d in dialogues for t in d.turns if t.role == "teacher"]
    assert teacher_turns and all(t.move in MOVES for t in teacher_turns)
    assert all(p.answer and p.solution for p in bank)


def test_bank_carries_the_license_notice():
    notice = (DIALOGUES_DIR / "README.md").read_text()
    assert "CC BY-SA 4.0" in notice and "MathDial" in notice


@pytest.mark.skipif(not SHARED_MATHDIAL.exists(), reason="../shared is not beside this checkout")
def test_shipped_bank_matches_a_fresh_import_of_the_source():
    problems, dialogues = {}, []
    for problem, dialogue in read_mathdial(SHARED_MATHDIAL):
        problems.setdefault(problem.id, problem)
        dialogues.append(dialogue.to_json())
    repairs = json.loads((DIALOGUES_DIR / "repairs.json").read_text())
    problems = apply_repairs(problems, repairs)
    shipped_problems = [json.loads(line) for line in PROBLEMS_FILE.open()]
    shipped_dialogues = [json.loads(line) for line in (DIALOGUES_DIR / "mathdial.jsonl").open()]
    assert shipped_problems == [p.to_json() for p in problems.values()]
    assert shipped_dialogues == dialogues
