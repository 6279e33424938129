"""RLHF rounds as the admin page (and its schedule) runs them: start, follow, cancel, the gate's
verdict, promote and roll back the served version without a restart. Every action is audited.

Training never runs here: a round is a row and a worker process (tutor.training.runs).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tutor.accounts import ADMIN, AccountService
from tutor.errors import InvalidInput
from tutor.evaluation.gate import refusal
from tutor.model.registry import Registry
from tutor.service import TutorService
from tutor.storage.store import TrainingRun, User
from tutor.training import runs
from tutor.training.preference import CONDITIONAL, ROUNDS, SELF_IMITATION, SUPERVISED

log = logging.getLogger(__name__)

SCHEDULE_KEY = "rounds.schedule"
# below this many examples a round rarely learns what the gate can see: the admin confirms first
ADVISED_EXAMPLES = 50
UNITS = {"dpo": "pairs", "kto": "rated turns", SELF_IMITATION: "passing drafts (the judge keeps those it scores 0.6 or more)",
         CONDITIONAL: "rated turns, each under its rating"}


@dataclass(frozen=True)
class RoundPlan:
    """What a round would train now: its kind, the version it starts from (None: the base) and
    the examples the feedback dataset holds, by source."""

    kind: str
    parent: str | None
    examples: int
    by_source: dict[str, int]

    @property
    def few(self) -> bool:
        return self.examples < ADVISED_EXAMPLES

    def summary(self) -> str:
        start = self.parent or "the base model"
        sources = " · ".join(f"{source} {count}" for source, count in self.by_source.items())
        held = " (also the reference it is held near)" if self.kind not in SUPERVISED else ""
        return (f"{self.kind.upper()} from {start}{held} on {self.examples} "
                f"{UNITS[self.kind]}" + (f" ({sources})" if sources else ""))


@dataclass(frozen=True)
class Schedule:
    """Start a round every `every_days` days or once `after_labels` new labels came in
    (whichever first; None: not on that ground). Stored in the database."""

    kind: str = "dpo"
    every_days: float | None = None
    after_labels: int | None = None

    @property
    def on(self) -> bool:
        return bool(self.every_days or self.after_labels)

    def to_json(self) -> dict:
        return asdict(self)


class Rounds:
    def __init__(self, service: TutorService, accounts: AccountService, registry: Registry, data_dir: Path,
                 round_config: dict):
        self.service, self.accounts, self.registry = service, accounts, registry
        self.store = service.store
        self.data_dir = data_dir
        self.round_config = round_config  # base model, models folder, gate slice...: runs.round_config
        self._processes: dict[int, object] = {}
        self._lock = threading.Lock()

    # rounds

    def plan(self, kind: str, include_simulated: bool = True, mrbench: bool = False) -> RoundPlan:
        """What a round of `kind` would train if it started now (`mrbench`: with MRBench's rated
        teacher turns as pairs). Pairs of the planner's words and a sent draft (`planner_pairs`)
        are not counted here: the judge scores them when the round builds its data."""
        from tutor.training.feedback import (DPO_FILE, KTO_FILE, DatasetOptions, assemble, assemble_conditional,
                                             finish, imitation)

        _check_kind(kind)
        parent = self.registry.alias("champion")
        options = DatasetOptions(prompt_format=self.registry.prompt_format(parent or "base"),
                                 include_simulated=include_simulated, mrbench=mrbench)
        if kind == SELF_IMITATION:  # counted before the judge reads them (the round scores them)
            kept = finish(imitation(self.store.labelled_turns(), options, lambda turn, text: 1.0, Counter()),
                          options, Counter())
        elif kind == CONDITIONAL:
            kept = assemble_conditional(self.store, options)[0]
        else:
            kept, _ = assemble(self.store, options)[0][DPO_FILE if kind == "dpo" else KTO_FILE]
        return RoundPlan(kind, parent, len(kept), dict(Counter(example.source for example in kept)))

    def start(self, admin: User | None, kind: str, include_simulated: bool = True, mrbench: bool = False,
              planner_pairs: bool = False) -> TrainingRun:
        """Start a round in a worker process (admin None: the schedule). One at a time.
        `planner_pairs` (DPO): add pairs of the planner's words and each sent draft, the judge's choice chosen."""
        if admin is not None:
            self.accounts.require(admin, ADMIN)
        _check_kind(kind)
        self.reap()
        config = self.round_config | {"include_simulated": include_simulated, "mrbench": mrbench,
                                      "planner_pairs": planner_pairs, "parent": self.registry.alias("champion")}
        run, process = runs.start(self.store, self.data_dir, kind, config, exclusive=True)
        with self._lock:
            self._processes[run.id] = process
        self.store.audit(admin, "start_round", f"run:{run.id}", {"kind": kind, "simulated": include_simulated,
                                                                 "mrbench": mrbench, "planner_pairs": planner_pairs})
        return run

    def cancel(self, admin: User, run_id: int) -> TrainingRun:
        self.accounts.require(admin, ADMIN)
        run = self.store.training_run(run_id)
        if not run.active:
            raise InvalidInput(f"Round {run.id} is {run.status}; there is nothing to cancel.")
        self.store.update_training_run(run.id, cancel_requested=1, message="cancelling…")
        if not run.step:
            # not training yet (starting, building the dataset): stop the worker now. Once
            # training, the worker stops itself at the next step's end and registers nothing;
            # a cancel during the gate leaves the candidate without a verdict (not promotable)
            self._stop(run)
        self.store.audit(admin, "cancel_round", f"run:{run.id}")
        return self.store.training_run(run.id)

    def reap(self) -> None:
        """Rounds whose worker died without a word are marked so (the champion serves on)."""
        runs.reap(self.store)
        with self._lock:
            for run_id, process in list(self._processes.items()):
                if process.poll() is not None:
                    self._processes.pop(run_id, None)

    def runs(self, limit: int = 10) -> list[TrainingRun]:
        self.reap()
        return self.store.training_runs(limit)

    def _stop(self, run: TrainingRun) -> None:
        process = self._processes.get(run.id)
        if process is not None:
            process.terminate()
        elif run.pid and runs.alive(run.pid):
            os.kill(run.pid, signal.SIGTERM)

    # the served version

    def champion(self) -> str | None:
        return self.registry.alias("champion")

    def promote(self, admin: User, version: str) -> str:
        """Serve `version` from now on, if a round's gate passed it (a console `models promote`
        can override; the page cannot)."""
        self.accounts.require(admin, ADMIN)
        gate = self.gate_of(version)
        if gate is None:
            raise InvalidInput(f"{version} has no gate verdict: only a round's candidate can be promoted here.")
        if gate["champion"] != (self.champion() or "base"):
            raise InvalidInput(f"{version} was measured against {gate['champion']}, not against "
                               f"{self.champion() or 'the base'}, which serves now: run a new round.")
        if not gate["passed"]:
            raise InvalidInput(f"The gate refused {version}: {refusal(gate)}.")
        previous = self.champion()
        self._serve(admin, version)
        self.store.audit(admin, "promote", f"model:{version}", {"previous": previous})
        return version

    def rollback(self, admin: User) -> str:
        """Serve what served before the current champion was promoted (rolling back twice goes
        two promotions back, not back and forth)."""
        self.accounts.require(admin, ADMIN)
        current = self.champion()
        for change in self.store.alias_changes("champion", limit=1000):
            if change["version"] == current and change["reason"] != "rollback":
                if not change["previous"] or change["previous"] == current:
                    break
                self._serve(admin, change["previous"], reason="rollback")
                self.store.audit(admin, "rollback", f"model:{change['previous']}", {"from": current})
                return change["previous"]
        raise InvalidInput("There is no earlier champion to roll back to.")

    def _serve(self, admin: User, version: str, reason: str = "promote") -> None:
        adapter = self.registry.resolve(version)
        self.service.use_adapter(adapter)  # first: a version that cannot load changes nothing
        self.registry.set_alias("champion", version, actor=admin.name, reason=reason)

    def gate_of(self, version: str) -> dict | None:
        for run in self.store.training_runs(limit=100):
            if run.version == version and run.gate and run.status == "done":
                return run.gate
        return None

    # the schedule

    def schedule(self) -> Schedule:
        stored = self.store.setting(SCHEDULE_KEY)
        return Schedule(**json.loads(stored)) if stored else Schedule()

    def set_schedule(self, admin: User, schedule: Schedule) -> Schedule:
        self.accounts.require(admin, ADMIN)
        _check_kind(schedule.kind)
        if (schedule.every_days is not None and schedule.every_days <= 0) or (
                schedule.after_labels is not None and schedule.after_labels <= 0):
            raise InvalidInput("Days and labels are positive numbers (leave empty for off).")
        self.store.set_setting(SCHEDULE_KEY, json.dumps(schedule.to_json()))
        self.store.audit(admin, "set_schedule", None, schedule.to_json())
        return schedule

    def due(self, moment: datetime | None = None) -> str | None:
        """Why a scheduled round is due now (None: it is not)."""
        schedule = self.schedule()
        if not schedule.on or self.store.active_training_run() is not None:
            return None
        moment = moment or datetime.now(timezone.utc)
        last = next((r for r in self.store.training_runs(limit=50) if r.kind in ROUNDS), None)
        since = last.created if last else None
        if schedule.every_days and (since is None or
                                    datetime.fromisoformat(since) <= moment - timedelta(days=schedule.every_days)):
            return f"every {schedule.every_days:g} days"
        if schedule.after_labels and self.store.labels_since(since) >= schedule.after_labels:
            return f"{schedule.after_labels} new labels"
        return None

    def tick(self) -> TrainingRun | None:
        """Start the scheduled round if one is due (the app calls this every few minutes)."""
        self.reap()
        reason = self.due()
        if reason is None:
            return None
        run = self.start(None, self.schedule().kind)
        log.info("scheduled round %d started (%s)", run.id, reason)
        return run


def _check_kind(kind: str) -> None:
    if kind not in ROUNDS:
        raise InvalidInput(f"A round is {' or '.join(k.upper() for k in ROUNDS)}.")
