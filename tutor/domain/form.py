"""Clean form: what a child reads is whole, capitalised English sentences.

`tidy` mends what can be mended without changing a word, before any check reads a draft and
before it is shown: list markers and stray numbering ("1) Yes, ..." reads as "Yes, ..."), a
space before "?", doubled stops, a lower-case sentence start, a lone "i". `form_faults` names
what cannot be mended: brackets or quotes left open, stage directions ("(laughs)"), a word that
is neither English nor the problem's or the conversation's ("legsolle"), a word said twice in a
row, a question without a word ("75?", "2 × 160 =?"). The turn as a whole may ask one question (more only where the planner itself asks more).
"""

from __future__ import annotations

import re

from tutor.domain.words import WORD, unknown_words

# "1) ", "2. ", "- ", "• ", "(3) ", "Step 2: " opening the text or a line; "2) " or "(2) " opening a
# sentence ("...a decimal. 2) Please use"), where "33. " may end one ("That's right: 33. What...")
_LIST_MARKER = re.compile(r"(?:^|(?<=\n))\s*(?:\(?\d{1,2}[.)](?!\d)|[-*•]|step\s+\d+\s*:)\s+"
                          r"|(?<=[.!?]\s)(?:\(?\d{1,2}\)|step\s+\d+\s*:)\s+", re.I)
_SENTENCE_START = re.compile(r"(^|[.!?]\s+|\n\s*)([\"'(\[]?)([a-z])")
_STAGE_DIRECTION = re.compile(r"\(\s*[A-Za-z]+(?:\s+[A-Za-z]+){0,2}\s*\)|\*[A-Za-z][^*]{0,30}\*|\[[A-Za-z][^\]]{0,30}\]")
_DOUBLED_WORD = re.compile(r"\b([A-Za-z]{2,})\s+\1\b", re.I)
_FINE_TWICE = frozenset({"that", "had", "very", "so", "bye", "ha", "no", "yes"})

UNBALANCED = "leaves a bracket or quote open"
STAGE_DIRECTION = "has a stage direction"
NOT_ENGLISH = "has words that are not English"
WORD_TWICE = "says a word twice in a row"
TOO_MANY_QUESTIONS = "asks more than one question"
NOT_A_SENTENCE = "asks a question without a word"
# a number said alone ("48. What number goes in the blank in ...?" after "idk"): a value given
# with nothing said of it, mostly false (a DPO round's candidate learned it, v11)
BARE_NUMBER = "states a number alone"
_BARE_NUMBER = re.compile(r"^\W*[$€]?\d[\d,]*(?:\.\d+)?%?\W*$")
# a worked-solution sentence with its blank, said as a statement: "That's right: Total, the three
# harbors have ___ pounds of lobster." (a blank belongs in a question, or quoted)
BLANK_STATED = "states a sentence with a blank"
VERDICT_TWICE = "says it is right twice"
NO_QUESTION_WORD = "asks without a question word"
HEADLESS = "starts mid-phrase"
# a sentence that lost its verb: "40 away from 960: what is 960 − 40?" (from "Take 40 away from 960")
_HEADLESS = re.compile(r"^\W*[$€]?\d[\d,.]*\s+(?:away\s+from|by|and|from|to|into|how|what|why|which|where|when|who)\b",
                       re.I)
LABEL = "opens with a label"
# a speaker's or answer's label before the turn: "Expert Answer: Yes, ...", "Tutor: ..."
_LABEL = re.compile(r"^\W*(?:[A-Za-z]+\s+)?(?:answer|tutor|teacher|assistant|response|reply|expert)\s*:", re.I)
LINE_BREAK = "breaks a line"  # a chat turn is one paragraph: "100\n\nFocusing on the numbers..."
NO_BLANK = "asks for a blank it does not show"
EQUALS_QUESTION = "sets a calculation equal to a question"
_EQUALS_QUESTION = re.compile(r"=\s*(?:how|what|which|why)\b", re.I)  # "100 + 50 = how much does he have left?"
_BLANK_ASKED = re.compile(r"\b(?:in|fills?|from)\s+the\s+blank\b|\bmissing\s+from\b", re.I)
# a question asks with a question word, an auxiliary opening a clause ("Can you...", "so is it..."),
# a tag ("..., right?") or a blank; "960 minus 40 isn't as bad as we thought it would be?" does not
_QUESTION_WORD = re.compile(r"\b(?:what|how|which|why|where|when|who|whose|whom)\b", re.I)
_AUX = (r"(?:can|could|do|does|did|is|are|was|were|will|would|should|shall|have|has|had|may|might|must"
        r"|want|isn't|aren't|don't|doesn't|didn't|won't|wouldn't|can't|shouldn't)")
# an auxiliary opening a clause, or asking its subject anywhere ("Hi Luca can you ...", "so do we ...")
_AUXILIARY = re.compile(rf"(?:^|[,:;]\s*)\W*(?:(?:so|and|now|then|ok|okay|well|but|also|great|good|right)\b,?\s+)*{_AUX}\b"
                        rf"|\b{_AUX}\s+(?:you|we|i|it|that|this|they|he|she|there|the|your|our|his|her|these|those)\b",
                        re.I)
_TAG = re.compile(r"\b(?:right|correct|ok|okay|yes|no|agree|see|it|they|you)\s*\?\s*$", re.I)
# "That's right: $165 is correct.", "Correct, 11 is right": one verdict a sentence is enough
_RIGHT = re.compile(r"\b(?:right|correct)\b", re.I)


def tidy(text: str) -> str:
    """The text with list markers gone, stops and spaces mended and sentences capitalised."""
    text = _LIST_MARKER.sub("", text)
    text = re.sub(r"([?!])[?!]+", r"\1", text)
    text = re.sub(r"\s+([?!.,;:])(?=\s|$)", r"\1", text)
    text = re.sub(r"\.{2,}(?!\.)", ".", text) if "..." not in text else text
    text = re.sub(r"\bi\b(?=['\s])", "I", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    return _SENTENCE_START.sub(lambda m: m.group(1) + m.group(2) + m.group(3).upper(), text)


def form_faults(sentence: str, allowed_words: frozenset[str] = frozenset()) -> list[str]:
    """What is wrong with a (tidied) sentence's form that tidying cannot mend."""
    faults = []
    if (sentence.count("(") != sentence.count(")") or sentence.count("[") != sentence.count("]")
            or sentence.count('"') % 2):
        faults.append(UNBALANCED)
    if any(not re.search(r"\d|_", found) for found in _STAGE_DIRECTION.findall(sentence)):
        faults.append(STAGE_DIRECTION)
    if unknown := unknown_words(sentence, allowed_words):
        faults.append(f"{NOT_ENGLISH}: {', '.join(unknown)}")
    if any(word.lower() not in _FINE_TWICE for word in _DOUBLED_WORD.findall(sentence)):
        faults.append(WORD_TWICE)
    words = [word for word in WORD.findall(sentence) if len(word) > 1]  # "x" in "800 x 2" is no word
    asks = sentence.rstrip().endswith("?")
    if asks and not words:  # "75?", "2 × 160 =?": asks nothing in words
        faults.append(NOT_A_SENTENCE)
    elif not asks and _BARE_NUMBER.match(sentence):
        faults.append(BARE_NUMBER)
    elif (asks and "___" not in sentence and not _QUESTION_WORD.search(sentence)
          and not _AUXILIARY.search(sentence) and not _TAG.search(sentence)):
        faults.append(NO_QUESTION_WORD)
    if _HEADLESS.search(sentence):
        faults.append(HEADLESS)
    if _LABEL.search(sentence):
        faults.append(LABEL)
    if "\n" in sentence.strip():
        faults.append(LINE_BREAK)
    if _BLANK_ASKED.search(sentence) and "___" not in sentence:
        faults.append(NO_BLANK)
    if not asks and "___" in re.sub(r'"[^"]*"', "", sentence):
        faults.append(BLANK_STATED)
    if _EQUALS_QUESTION.search(sentence):
        faults.append(EQUALS_QUESTION)
    if len(_RIGHT.findall(sentence)) > 1:
        faults.append(VERDICT_TWICE)
    return faults
