"""Faithfulness: the tutor's words agree with what the planner judged, and stay on the problem.

The guard keeps the answer and unlicensed numbers out of a draft; this check keeps its meaning
honest. A model draft is read sentence by sentence as it streams, then whole:
- agreement with the grade: it never affirms a wrong or partial answer, never calls a right one
  wrong, and after a solution it celebrates;
- grounded: it names no object, quantity or unit that is not in the problem, its verified
  steps or the conversation (a word human teachers use off-problem in several problems, such as
  "idea" or "dollars", is common language and always allowed);
- true arithmetic: a calculation it states ("3 * 15 = 40") is right;
- it does not say a sentence of the tutor's previous turn again word for word, nor ask again
  what it asked;
- whole sentences: a draft the token limit cut is trimmed to its last complete sentence;
- a focus move is about the step in focus: its numbers, its operation or its sentence's words.

Words are compared as crude stems, enough to see that "buckets" is about "bucket".
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from tutor.domain.arithmetic import false_calculations, numbers_in
from tutor.domain.grading import LearnerState
from tutor.domain.steps import Step

# Sentences end at . ! ? followed by a space or the end; "3.5" and "$2.50" are not ends.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*(?=\s|$)")
_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")

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
    r"^\W*(?:no|nope|not quite|not exactly|incorrect|wrong|almost)\b"
    r"|\b(?:not (?:quite )?(?:right|correct)|isn't (?:quite )?(?:right|correct)|incorrect|wrong"
    r"|a mistake|an error|not there yet|isn't there yet|try again|not quite|are you sure"
    r"|check (?:it|that|this|your (?:answer|work|calculation)) again)\b",
    re.I,
)
_CELEBRATE = re.compile(
    r"\b(?:yes|yeah|correct|right|well done|great|good|excellent|perfect|brilliant|fantastic"
    r"|awesome|nice|solved|got it|that's it|congratulations|amazing|exactly|wonderful|super|superb"
    r"|terrific|fabulous|marvell?ous|bravo|spot on|there you go|you did it|nailed it)\b",
    re.I,
)
# Operation words by the step's operator: a focus turn may point at the operation.
_OPERATION_WORDS = {
    "+": {"add", "plus", "sum", "total", "altogether", "combin", "together", "more", "addition"},
    "-": {"subtract", "minu", "difference", "left", "less", "fewer", "remain", "take", "away", "subtraction"},
    "*": {"multiply", "multipli", "time", "product", "each", "per", "double", "twice", "multiplication"},
    "/": {"divide", "divid", "split", "share", "each", "per", "half", "division", "quotient"},
}
# Function words and tutoring talk that name nothing: never a grounding problem.
STOPWORDS = frozenset("""
a an the and or but if then so than that this these those there here it its is are was were be
been being am do does did done doing have has had having will would can could should shall may
might must not no yes of to in on at for by with from as into onto over under about after before
again up down out off i me my we our us you your he him his she her they them their what which
who whom whose when where why how all any both each few more most other some such only own same
too very just also now let lets let's okay ok well oh hi hello please thank thanks
don't doesn't didn't isn't aren't wasn't weren't can't couldn't won't wouldn't shouldn't haven't
hasn't hadn't i'm you're we're they're it's that's what's there's i've you've we've i'll you'll
""".split())


@dataclass(frozen=True)
class Judgement:
    """What the planner decided about the learner's message: the words must agree with it."""

    learner_state: str | None  # the grade's state; None when the learner pressed Hint
    celebrates: bool = False  # the learner has just solved the problem
    solved: bool = False  # the problem is solved (now or before): nothing is wrong any more
    focus_steps: tuple[Step, ...] = ()  # a focus move must be about one of these (the step in focus and its neighbours)
    grounded: frozenset[str] = frozenset()  # stems of words the tutor may name
    # stems that name things in word problems (objects, quantities, units): a draft may not
    # bring one in that the problem and the conversation do not have
    things: frozenset[str] = frozenset()
    # false calculations the learner wrote: quoting one back ("how can 18 + 21 = 21?") is fine
    quoted: frozenset[str] = frozenset()
    previous: str = ""  # the tutor's previous turn: saying it again word for word moves nothing on


def stem(word: str) -> str:
    word = word.lower().replace("'s", "")
    for suffix, replacement in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", ""), ("ly", "")):
        if suffix == "ly" and word.endswith("ply"):  # multiply, apply: no adverbs
            continue
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)] + replacement
    return word


def content_stems(text: str) -> set[str]:
    """The stems of a text's content words (three letters or more, no function words)."""
    return {stem(w) for w in _WORD.findall(text) if len(w) >= 3 and w.lower() not in STOPWORDS}


_COUNTED = re.compile(
    r"(?:[$€]?\d[\d,]*(?:\.\d+)?%?|\b(?:many|much|per|each|every|several|few|dozen|half|one|two|three|four"
    r"|five|six|seven|eight|nine|ten|twelve|twenty|hundred|thousand)\b)\s+([A-Za-z]+(?:'[a-z]+)?(?:[\s-]+[A-Za-z]+(?:'[a-z]+)?)?)",
    re.I,
)


# Numbers in words are quantities, which the guard checks; they are never a thing.
_NUMBER_WORDS = frozenset("""
one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen
seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand
million half third quarter fourth fifth sixth seventh eighth ninth tenth twice double triple
""".split())


def thing_stems(text: str) -> set[str]:
    """Stems of what a word problem counts or measures: the words right after a number or a
    quantity word ("3 bids", "how many white balls", "each week", "150 tonnes")."""
    return {stem(w) for phrase in _COUNTED.findall(text) for w in _WORD.findall(phrase)
            if len(w) >= 3 and w.lower() not in STOPWORDS | _NUMBER_WORDS}


def sentences(text: str) -> tuple[list[str], str]:
    """(complete sentences, the unfinished rest) of a text so far."""
    done, start = [], 0
    for end in _SENTENCE_END.finditer(text):
        sentence = text[start:end.end()].strip()
        if sentence:
            done.append(sentence)
        start = end.end()
    return done, text[start:].strip()


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


def negates(sentence: str) -> bool:
    """The sentence tells the learner their answer is wrong, or doubts it."""
    return bool(_NEGATE.search(sentence))


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
    return not judgement.celebrates and judgement.learner_state in _NOT_RIGHT


def _tells_wrong(judgement: Judgement) -> bool:
    """Saying the learner is wrong contradicts this judgement."""
    return judgement.learner_state == LearnerState.CORRECT.value or judgement.celebrates or judgement.solved


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
    # what the sentence counts ("150 tonnes", "each week") or a thing word problems name
    named = thing_stems(sentence) | (content_stems(sentence) & judgement.things)
    strange = sorted(named - judgement.grounded)
    if strange:
        reasons.append(f"names what is not in the problem or the conversation: {', '.join(strange)}")
    if wrong := [c for c in false_calculations(sentence) if c not in judgement.quoted]:
        reasons.append(f"states a false calculation: {'; '.join(wrong)}")
    if said_before(sentence, judgement.previous):
        reasons.append("says a sentence of the previous turn again")
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
    if judgement.celebrates and not celebrates(text):
        reasons.append(NO_CELEBRATION)
    if not judgement.celebrates and asks_again(text, judgement.previous):
        reasons.append("asks again what the previous turn asked")
    steps = judgement.focus_steps
    if steps and not judgement.celebrates and not any(is_about_step(text, step) for step in steps):
        reasons.append("is not about the step in focus")
    return tuple(dict.fromkeys(reasons))


def check_sent(text: str, judgement: Judgement) -> tuple[str, ...]:
    """Reasons a turn as sent fails: the whole check less the focus rule, which holds the
    model's drafts only (the planner's words may be about a neighbouring step)."""
    return check_turn(text, replace(judgement, focus_steps=()))


def asks_again(text: str, previous: str) -> bool:
    """Both turns ask, and this one names nothing the previous did not ("How much did she
    spend?" after "How much money did she spend?"): re-asking moves a stuck learner nowhere."""
    words = content_stems(text)
    return ("?" in text and "?" in previous and bool(words) and words <= content_stems(previous)
            and set(numbers_in(text)) <= set(numbers_in(previous)))


def plain(text: str) -> str:
    """The text's words and numbers, lower case: what "the same words" compares."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


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
        for word in thing_stems(text):
            thing_problems[word].add(problem_id)
    used_off_problem: dict[str, set[str]] = defaultdict(set)
    for problem_id, context, turn in teacher_turns:
        for word in content_stems(turn) - content_stems(context):
            used_off_problem[word].add(problem_id)
    common = {w for w, seen in used_off_problem.items() if len(seen) >= COMMON_IN_PROBLEMS}
    things = {w for w, seen in thing_problems.items() if len(seen) >= THING_IN_PROBLEMS} - common
    return Vocabulary(frozenset(common), frozenset(things))


@lru_cache(maxsize=4)
def load_vocabulary(path: Path) -> Vocabulary:
    return Vocabulary.from_json(json.loads(path.read_text(encoding="utf-8")))


def judgement(vocabulary: Vocabulary, learner_state: str | None, *, celebrates: bool = False,
              solved: bool = False, focus_steps: tuple[Step, ...] = (), context: Iterable[str] = (),
              previous: str = "") -> Judgement:
    """The judgement a draft is held to; `context` is what the tutor may name: the problem, its
    steps, the conversation; `previous` is the tutor's previous turn."""
    grounded, quoted = set(vocabulary.common), set()
    for text in context:
        grounded |= content_stems(text)
        quoted.update(false_calculations(text))
    return Judgement(learner_state, celebrates, solved, focus_steps, frozenset(grounded), vocabulary.things,
                     frozenset(quoted), previous)
