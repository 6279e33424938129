"""`problems check`: parse every bank solution into steps and verify each with SymPy."""

from __future__ import annotations

from tutor.config import PROBLEMS_FILE, add_data_dir_argument
from tutor.domain.problems import ProblemBank
from tutor.domain.steps import worked_solution


def register(subcommands) -> None:
    parser = subcommands.add_parser("problems", help="inspect the problem bank")
    actions = parser.add_subparsers(dest="action", required=True)
    check = actions.add_parser("check", help=__doc__.split(":", 1)[1].strip())
    check.add_argument("--verbose", action="store_true", help="print every problem's steps")
    add_data_dir_argument(check)  # every command takes it; this one reads only dialogues/
    check.set_defaults(run=run_check)


def run_check(args) -> int:
    everything = ProblemBank.load(PROBLEMS_FILE, include_excluded=True)
    excluded = [p for p in everything if p.excluded]
    bank = [p for p in everything if not p.excluded]
    failed = 0
    for problem in bank:
        solution = worked_solution(problem)
        if not solution.verified:
            failed += 1
            print(f"FAIL {problem.id}: " + "; ".join(solution.errors))
        elif args.verbose:
            print(f"ok   {problem.id} (answer {problem.answer})")
            for step in solution.steps:
                print(f"       {step.expression} = {step.value}{step.unit}  [{step.skill}]")
    for problem in excluded:
        print(f"excluded {problem.id}: {problem.excluded}")
    print(f"problems: {len(everything)}, excluded: {len(excluded)}")
    print(f"verified: {len(bank) - failed}/{len(bank)}")
    return 1 if failed else 0
