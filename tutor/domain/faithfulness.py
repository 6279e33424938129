"""Faithfulness: the tutor's words agree with what the planner judged, and stay on the problem.

The guard keeps the answer and unlicensed numbers out of a draft; this check keeps its meaning
honest. A model draft is read sentence by sentence as it streams, then whole:
- agreement with the grade: it never affirms a wrong or partial answer, never calls a right one
  wrong, and after a solution it celebrates;
- grounded: it names no object, quantity or unit that is not in the problem, its verified
  steps or the conversation (a word human teachers use off-problem in several problems, such as
  "idea" or "dollars", is common language and always allowed);
- true arithmetic: a calculation it states ("3 * 15 = 40") is right;
- true statements (`truth`): numbers tied to the right things, calculations a step makes,
  nothing the learner did not say, no work left after a solution, no done step asked again;
- clean form (`form`): whole English sentences, no stage directions, one question;
- it does not say a sentence of the tutor's previous turn again word for word, nor ask again
  what one of the last two turns asked (`repeats`), unless the learner just tried to answer;
- whole sentences: a draft the token limit cut is trimmed to its last complete sentence.

Words are compared as crude stems, enough to see that "buckets" is about "bucket".
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tutor.domain.arithmetic import false_calculations, numbers_in
from tutor.domain.grading import LearnerState
from tutor.domain.form import TOO_MANY_QUESTIONS, form_faults
from tutor.domain.repeats import REPEATS, WORDS, RepeatRule, question_sentences
from tutor.domain.steps import Step
from tutor.domain.truth import Facts, false_statements
from tutor.domain.words import content_stems, counted_nouns, plain, sentences, words_of


# Said of the learner's answer: it is right. Checked in statements, not in questions ("Is that
# right?" affirms nothing), and not when negated ("that's not right").
_AFFIRM = re.compile(
    r"^\W*(?:yes|yeah|yep|correct|exactly|perfect|excellent|brilliant|right you are|spot on)\b"
    r"|\b(?:you(?:'re| are)|that(?:'s| is)|it(?:'s| is)|this is|answer is|which is)\s+"
    r"(?:absolutely\s+|totally\s+|completely\s+|exactly\s+|quite\s+|so\s+|all\s+)?(?:right|correct)\b"
    r"|\b(?:well done|good job|great job|nice job|good work|great work|nice work|spot on|you(?:'ve)? got it"
    r"|got it right|that's it|you solved)\b"
    r"|\bi think you(?:'re| are) correct\b"
    r"|\byou(?:'ve| have)?\s+(?:found|got|gotten|reached|worked out|given)\s+(?:the|a)\s+(?:correct|right)\s+"
    r"(?:answer|value|number|result|total|amount|one)\b",
    re.I,
)
# Where a question's statement part ends: in "I see you found the correct answer, but what does
# a desk cost?" the words before "but" tell the learner something; the question after asks.
_CLAUSE = re.compile(r"[,;:]|\b(?:but|so|now)\b", re.I)
# Said of the learner's answer: it is wrong, or doubtful.
_NEGATE = re.compile(
    r"^\W*(?:no(?!\s+(?:problem|worries|need|doubt))|nope|not quite|not exactly|incorrect|wrong|almost)\b"
    r"|\b(?:not (?:quite )?(?:right|correct)|isn't (?:quite )?(?:right|correct)|incorrect|wrong"
    r"|a mistake|an error|not there yet|isn't there yet|try again|not quite|are you sure"
    r"|check (?:it|that|this|your (?:answer|work|calculation)) again)\b",
    re.I,
)
_CELEBRATE = re.compile(
    r"\b(?:yes|yeah|correct|right|well done|great|good|excellent|perfect|brilliant|fantastic"
    r"|awesome|nice|solved|got it|that's it|congratulations|amazing|exactly|wonderful|super|superb"
    r"|terrific|fabulous|marvell?ous|bravo|spot on|there you go|you did it|nailed it"
    r"|(?:that'?s|there'?s|that is|this is)\s+(?:your|the)\s+(?:required\s+|right\s+|final\s+)?answer)\b",
    re.I,
)
# Operation words by the step's operator: a focus turn may point at the operation.
_OPERATION_WORDS = {
    "+": {"add", "plus", "sum", "total", "altogether", "combin", "together", "more", "addition"},
    "-": {"subtract", "minu", "difference", "left", "less", "fewer", "remain", "take", "away", "subtraction"},
    "*": {"multiply", "multipli", "time", "product", "each", "per", "double", "twice", "multiplication"},
    "/": {"divide", "divid", "split", "share", "each", "per", "half", "division", "quotient"},
}
@dataclass(frozen=True)
class Judgement:
    """What the planner decided about the learner's message: the words must agree with it."""

    learner_state: str | None  # the grade's state; None when the learner pressed Hint
    celebrates: bool = False  # the learner has just solved the problem
    # a right value the learner concluded wrongly from: saying the conclusion is wrong is true
    mixed: bool = False
    # the grade read one value of a worked solution holding several: whether the learner is
    # right is not the check's to say (`Grade.certain`)
    certain: bool = True
    grounded: frozenset[str] = frozenset()  # stems of words the tutor may name
    # stems that name things in word problems (objects, quantities, units): a draft may not
    # bring one in that the problem and the conversation do not have
    things: frozenset[str] = frozenset()
    # false calculations the learner wrote: quoting one back ("how can 18 + 21 = 21?") is fine
    quoted: frozenset[str] = frozenset()
    previous: str = ""  # the tutor's previous turn: saying it again word for word moves nothing on
    facts: Facts | None = None  # what its statements must be true to (None: not read)
    words: frozenset[str] = frozenset()  # words beyond English it may use: the problem's, the conversation's
    check_form: bool = True  # held to clean form (a human turn is read for meaning alone)
    questions: int = 1  # the most questions a turn may ask (the planner's own count, at least 1)
    recent: tuple[str, ...] = ()  # the last two tutor turns: a question they asked is not asked again
    learner_tried: bool = False  # ...unless the learner just tried to answer it (a value)
    repeats: RepeatRule = WORDS


def whole_sentences(text: str, truncated: bool) -> str:
    """The text without a sentence the token limit cut off mid-way ("" if nothing whole is left);
    a reply that ended by itself keeps its last sentence even without a full stop."""
    done, rest = sentences(text)
    return " ".join(done + ([rest] if rest and not truncated else []))


# Grades after which "you're right" is false: a wrong or partial value, being stuck, asking for
# the answer, pressing Hint (None). An unclear message may be a right explanation the grader
# cannot read, so praise there is left to the model.
_NOT_RIGHT = (LearnerState.INCORRECT.value, LearnerState.PARTIAL.value, LearnerState.STUCK.value,
              LearnerState.ASKS_FOR_ANSWER.value, None)


def affirms(sentence: str) -> bool:
    """The sentence tells the learner their answer is right ("Is that right?" does not; in a
    question, only the clauses before the asking one are read)."""
    if sentence.rstrip().endswith("?"):
        sentence = " ".join(_CLAUSE.split(sentence)[:-1])
    return bool(_AFFIRM.search(sentence)) and not negates(sentence)


# Asking the learner to look back at an earlier mistake says nothing of this answer.
_LOOKING_BACK = re.compile(r"\b(?:where|what|how)\s+(?:you|I|we)\s+(?:\w+\s+)?(?:went|were going|had gone|go)\s+wrong"
                           r"|\bwhat\s+went\s+wrong|\b(?:your|the)\s+(?:first|earlier|original|previous)\s+(?:mistake|error)", re.I)


def negates(sentence: str) -> bool:
    """The sentence tells the learner their answer is wrong, or doubts it ("Can you see where
    you went wrong?" after a right answer looks back, and doubts nothing)."""
    return bool(_NEGATE.search(_LOOKING_BACK.sub(" ", sentence)))


NO_CELEBRATION = "does not celebrate the solution"


def celebrates(text: str) -> bool:
    """The text says the learner did well ("Well done!", "Exactly. There you go.")."""
    return bool(_CELEBRATE.search(text))


# Openings that tell the learner they are right, or wrong (each `affirms` or `negates` as a
# sentence). A draft opening with one against the judgement fails with its first words, so a
# trained student is kept from them (`ruled_out_openings`, also in lower case): v5, 40 scripted
# turns, 4-8 of ~60 tries failed so ("Yes", "You are correct" after "I do not know").
AFFIRMING_OPENINGS = ("Yes", "Yeah", "Yep", "Correct", "Exactly", "Perfect", "Excellent", "Brilliant",
                      "You are correct", "You're correct", "You are right", "You're right", "That is correct",
                      "That's correct", "That is right", "That's right", "Well done", "Good job", "Great job",
                      "Nice job", "Good work", "Great work", "Nice work", "You got it", "Spot on")
NEGATING_OPENINGS = ("No", "Nope", "Not quite", "Not exactly", "Incorrect", "Wrong", "Almost", "Are you sure")


def _tells_right(judgement: Judgement) -> bool:
    """Saying the learner is right contradicts this judgement."""
    return judgement.certain and not judgement.celebrates and judgement.learner_state in _NOT_RIGHT


def _tells_wrong(judgement: Judgement) -> bool:
    """Saying the learner is wrong contradicts this judgement (after a solution, a message can
    be wrong again: only this message's grade counts)."""
    right = judgement.learner_state == LearnerState.CORRECT.value and not judgement.mixed
    return judgement.certain and (right or judgement.celebrates)


def ruled_out_openings(judgement: Judgement) -> tuple[str, ...]:
    """The openings a draft under this judgement would fail the check with."""
    found = (AFFIRMING_OPENINGS if _tells_right(judgement) else ()) + (NEGATING_OPENINGS if _tells_wrong(judgement) else ())
    return found + tuple(opening.lower() for opening in found)


def check_sentence(sentence: str, judgement: Judgement) -> tuple[str, ...]:
    """Reasons this sentence contradicts the planner's judgement or leaves the problem."""
    reasons = []
    state = judgement.learner_state
    if _tells_right(judgement) and affirms(sentence):
        reasons.append(f"tells the learner they are right, but their message was judged {_said(state)}")
    if _tells_wrong(judgement) and negates(sentence):
        reasons.append("tells the learner they are wrong, but their answer was right")
    # a thing word problems count or measure ("150 tonnes", "each week") that this one does not have
    named = content_stems(sentence) & judgement.things

    strange = sorted(named - judgement.grounded)
    if strange:
        reasons.append(f"names what is not in the problem or the conversation: {', '.join(strange)}")
    if wrong := [c for c in false_calculations(sentence) if c not in judgement.quoted]:
        reasons.append(f"states a false calculation: {'; '.join(wrong)}")
    if said_before(sentence, judgement.previous):
        reasons.append("says a sentence of the previous turn again")
    if judgement.facts is not None:
        reasons += false_statements(sentence, judgement.facts)
    if judgement.check_form:
        reasons += form_faults(sentence, judgement.words)
    if not judgement.learner_tried and not judgement.celebrates and judgement.repeats.repeated(sentence, judgement.recent):
        reasons.append(REPEATS)
    return tuple(reasons)


def said_before(sentence: str, previous: str) -> bool:
    """The previous turn had this sentence, word for word (three words or more: "Good job." may
    come again)."""
    words = plain(sentence)
    if len(words.split()) < 3 or not previous:
        return False
    done, rest = sentences(previous)
    return words in {plain(said) for said in done + [rest]}


def check_turn(text: str, judgement: Judgement) -> tuple[str, ...]:
    """Reasons the whole turn fails: every sentence's, then the turn's own."""
    done, rest = sentences(text)
    reasons = [reason for sentence in done + ([rest] if rest else []) for reason in check_sentence(sentence, judgement)]
    if judgement.celebrates and judgement.certain and not celebrates(text):
        reasons.append(NO_CELEBRATION)
    if judgement.check_form and len(question_sentences(text)) > max(1, judgement.questions):
        reasons.append(TOO_MANY_QUESTIONS)
    return tuple(dict.fromkeys(reasons))


def is_about_step(text: str, step: Step) -> bool:
    """The text names the step's numbers, its operation, or words of its sentence."""
    if set(numbers_in(text)) & set(step.operands):
        return True
    words = content_stems(text)
    operations = {t for t in step.expression.split() if t in _OPERATION_WORDS}
    if any(words & _OPERATION_WORDS[o] for o in operations):
        return True
    return bool(words & content_stems(step.description))


def reason_kind(reason: str) -> str:
    """A reason without its particulars ("names what is not in the problem ...: moon" ->
    "names what is not in the problem ...", "mentions 360, which ..." -> "mentions N, which ..."),
    for tallies."""
    return re.sub(r"\d[\d,.]*\d|\d", "N", reason.split(":")[0].split(", but")[0])


def _said(state: str | None) -> str:
    return (state or "a hint request").replace("_", " ")


@dataclass(frozen=True)
class Vocabulary:
    """Words learned from the bank and the human teachers (`dialogues/vocabulary.json`)."""

    common: frozenset[str]  # tutoring language: never a grounding problem
    things: frozenset[str]  # what word problems count or measure

    def to_json(self) -> dict:
        return {"common": sorted(self.common), "things": sorted(self.things)}

    @classmethod
    def from_json(cls, record: dict) -> Vocabulary:
        return cls(frozenset(record["common"]), frozenset(record["things"]))


# A word a human teacher used without it being in the problem, its steps or the conversation is
# common language once teachers of this many different problems used it so; a word is a thing
# once this many problems count or measure it. Learned from the training problems only, so the
# check's rate on the validation slice is measured out of sample.
COMMON_IN_PROBLEMS = 3
THING_IN_PROBLEMS = 2


def learn_vocabulary(problems: Iterable[tuple[str, str]], teacher_turns: Iterable[tuple[str, str, str]]) -> Vocabulary:
    """From (problem id, problem text with its solution) and (problem id, what the teacher had
    seen: problem, steps, conversation so far; the teacher's turn)."""
    thing_problems: dict[str, set[str]] = defaultdict(set)
    for problem_id, text in problems:
        for word in counted_nouns(text):
            thing_problems[word].add(problem_id)
    used_off_problem: dict[str, set[str]] = defaultdict(set)
    for problem_id, context, turn in teacher_turns:
        for word in content_stems(turn) - content_stems(context):
            used_off_problem[word].add(problem_id)
    common = {w for w, seen in used_off_problem.items() if len(seen) >= COMMON_IN_PROBLEMS}
    things = {w for w, seen in thing_problems.items() if len(seen) >= THING_IN_PROBLEMS}
    return Vocabulary(frozenset(common), frozenset(things))


@lru_cache(maxsize=4)
def load_vocabulary(path: Path) -> Vocabulary:
    return Vocabulary.from_json(json.loads(path.read_text(encoding="utf-8")))


def judgement(vocabulary: Vocabulary, learner_state: str | None, *, celebrates: bool = False,
              context: Iterable[str] = (), previous: str = "", facts: Facts | None = None,
              recent: Sequence[str] = (), learner_tried: bool = False, repeats: RepeatRule = WORDS,
              questions: int = 1, check_form: bool = True, mixed: bool = False, certain: bool = True) -> Judgement:
    """The judgement a draft is held to; `context` is what the tutor may name: the problem, its
    steps, the conversation; `previous` is the tutor's previous turn, `recent` its last two."""
    grounded, quoted = set(vocabulary.common), set()
    context = list(context)
    for text in context:
        grounded |= content_stems(text)
        quoted.update(false_calculations(text))
    return Judgement(learner_state, celebrates, mixed, certain, frozenset(grounded), vocabulary.things,
                     frozenset(quoted), previous, facts, words_of(*context), check_form, questions,
                     tuple(recent), learner_tried, repeats)
