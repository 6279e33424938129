"""The `planner` student: no model at all; the tutor says the planner's own words.

The reference row of every evaluation table (what the pedagogy alone does), and a zero-CPU
choice for a deployment.
"""

from __future__ import annotations

from typing import Sequence

from tutor.domain.prompting import PLANNER_FORMAT, ChatMessage
from tutor.model.backend import GenerationParams, Reply

PLANNER = "planner"


class PlannerStudent:
    version = PLANNER
    prompt_format = PLANNER_FORMAT  # callers skip generation: the planned text is the turn

    def generate(self, messages: Sequence[ChatMessage], params: GenerationParams) -> Reply:
        return Reply()  # writes nothing: the planner's words stand
