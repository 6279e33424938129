"""Words in free text: crude stems, content words, and whether a word is English.

Shared by grading (what a learner's value is about), the faithfulness and truth checks (what a
tutor turn names) and the form check (every word English or the problem's). Stems are crude,
enough to see that "buckets" is about "bucket" and "harbors" about "harbor".
"""

from __future__ import annotations

import re
from functools import lru_cache

WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")

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
    return {stem(w) for w in WORD.findall(text) if len(w) >= 3 and w.lower() not in STOPWORDS}


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
    return {stem(w) for phrase in _COUNTED.findall(text) for w in WORD.findall(phrase)
            if len(w) >= 3 and w.lower() not in STOPWORDS | _NUMBER_WORDS}


# words for operations that end like plurals ("3 plus 3", "three times 15")
_OPERATION_WORDS = frozenset("plus minus times equals less ones".split())
# Plurals without an -s: what a problem counts can be these too.
_IRREGULAR_PLURALS = frozenset("children people feet teeth men women mice geese sheep fish deer".split())


_AFTER_NUMBER = re.compile(r"(?:\b\d[\d,]*(?:\.\d+)?|\b(?:two|three|four|five|six|seven|eight|nine|ten|twelve"
                           r"|twenty|hundred|thousand|many))\s+([a-z]+)(?:\s+([a-z]+))?")


def _plural(word: str) -> bool:
    return (len(word) >= 3 and word not in STOPWORDS | _OPERATION_WORDS
            and (word in _IRREGULAR_PLURALS or (word.endswith("s") and not word.endswith("ss") and stem(word) != word)))


def counted_plurals(text: str) -> set[str]:
    """The nouns a text counts, as written (lower case): a plural word right after a number or
    "many", or after it and one word ("3 bids", "2 large pizzas", "how many white balls"); a
    word after "each" or a verb after a number ("each contains", "3 customers buy") is not."""
    found = set()
    for first, second in _AFTER_NUMBER.findall(text.lower()):
        if _plural(first) and second not in _OBJECTS:  # "2,000 gives you", "108 represents how": verbs
            found.add(first)
        elif second and _plural(second) and first not in STOPWORDS:
            found.add(second)
    return found


# words that follow a verb, not a counted noun
_OBJECTS = frozenset("you me us him her them it how what that the a an this".split())


def counted_nouns(text: str) -> set[str]:
    """Stems of the nouns a text counts (`counted_plurals`)."""
    return {stem(word) for word in counted_plurals(text)}


# Sentences end at . ! ? followed by a space or the end; "3.5" and "$2.50" are not ends.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*(?=\s|$)")


def sentences(text: str) -> tuple[list[str], str]:
    """(complete sentences, the unfinished rest) of a text so far."""
    done, start = [], 0
    for end in _SENTENCE_END.finditer(text):
        sentence = text[start:end.end()].strip()
        if sentence:
            done.append(sentence)
        start = end.end()
    return done, text[start:].strip()


def plain(text: str) -> str:
    """The text's words and numbers, lower case: what "the same words" compares."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


# Chat words, units and ordinal endings ("2nd") a dictionary lacks.
_CHAT_WORDS = frozenset("""ok okay idk hmm hm yep yeah nope gonna wanna lets let's anymore st nd rd th
mph km kg ft cm mm lb lbs oz hr hrs min mins sec secs""".split())
# British spellings: "visualise", "colour", "metre" are English too.
_BRITISH = ((re.compile(r"is(e|es|ed|ing|ation)$"), r"iz\1"), (re.compile(r"our(s?)$"), r"or\1"),
            (re.compile(r"tre(s?)$"), r"ter\1"))
# How an inflected word is taken back to a dictionary form: (suffix, replacements to try).
_INFLECTIONS = (
    ("'s", ("",)), ("s'", ("s",)), ("n't", ("",)), ("'re", ("",)), ("'ve", ("",)), ("'ll", ("",)), ("'d", ("",)),
    ("ies", ("y",)), ("ied", ("y",)), ("ier", ("y",)), ("iest", ("y",)), ("ily", ("y",)),
    ("es", ("", "e")), ("s", ("",)), ("ed", ("", "e")), ("ing", ("", "e")), ("er", ("", "e")),
    ("est", ("", "e")), ("ly", ("", "le")), ("ness", ("",)), ("ment", ("",)),
)


@lru_cache(maxsize=1)
def _dictionary() -> frozenset[str]:
    """English words from the `english-words` package (web2 and GCIDE lists, MIT licence),
    lower case; loaded on first use (~0.1 s)."""
    from english_words import get_english_words_set

    return frozenset(get_english_words_set(["web2", "gcide"], lower=True, alpha=True))


@lru_cache(maxsize=65536)
def is_english(word: str) -> bool:
    """The word, or its base form with a common inflection taken off ("harbors", "walked",
    "carried", "stopping"), is in the dictionary."""
    word = word.lower().strip("'")
    if not word or word in _CHAT_WORDS:
        return True
    words = _dictionary()
    if word in words:
        return True
    for pattern, american in _BRITISH:
        if pattern.search(word) and is_english(pattern.sub(american, word)):
            return True
    for suffix, replacements in _INFLECTIONS:
        if word.endswith(suffix) and len(word) > len(suffix) + 1:
            base = word[: -len(suffix)]
            candidates = [base + r for r in replacements]
            if len(base) > 2 and base[-1] == base[-2]:  # "stopped", "bigger": a doubled consonant
                candidates.append(base[:-1])
            if any(candidate in words for candidate in candidates):
                return True
    return False


def unknown_words(text: str, allowed: frozenset[str] = frozenset()) -> list[str]:
    """Words of the text that are neither English nor in `allowed` (lower case words of the
    problem and the conversation: names, "instagram", a learner's spelling)."""
    found = []
    for word in WORD.findall(text):
        lower = word.lower()
        if lower in allowed or lower.split("'")[0] in allowed or is_english(lower):
            continue
        found.append(word)
    return found


def words_of(*texts: str) -> frozenset[str]:
    """The lower-case words of texts, as `unknown_words` allows them."""
    return frozenset(w.lower() for text in texts for w in WORD.findall(text))
