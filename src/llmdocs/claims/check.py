"""Each sentence a model wrote, kept only when code finds nothing wrong with it: every
claim in the vocabulary, no repeat, no labels, no doubled word, nothing cut off, no echo
of the prompt, no talk to the reader about the document."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from itertools import pairwise
from typing import Any

from llmdocs.claims.document import unsupported_in
from llmdocs.claims.extract import claims_of
from llmdocs.claims.sentences import MAX_TEXT, prose_units
from llmdocs.claims.spec_index import SpecIndex
from llmdocs.claims.vocabulary import Vocabulary

MAX_SENTENCE_WORDS = 60
PHRASE_WORDS = 5  # a phrase this long said twice is a repeat
ECHO_OVERLAP = 0.5  # share of a sentence's word trigrams found in the instructions
# words a sentence has and a list of labels lacks
_GLUE = frozenset({"a", "an", "the", "is", "are", "was", "be", "can", "will", "to",
                   "of", "for", "with", "in", "on", "by", "from", "as", "at", "it",
                   "its", "this", "that", "these", "those", "you", "your", "we", "our",
                   "they", "their", "he", "she", "and", "or", "but", "if", "when",
                   "then", "than", "each", "every", "all", "any", "has", "have", "had",
                   "does", "do", "not", "returns", "return", "lets", "allows", "sends",
                   "gets"})
_TO_READER = ("please", "let me", "here is", "here are", "here's", "feel free",
              "as an ai", "i am", "i'm", "i will", "i'll", "i have", "i can", "sorry",
              "simple example", "this example", "this is an example")
# what a sentence about the document itself names ("your request", "this section"); the
# API's requests are no such thing, so "request" only counts as the reader's
_ABOUT_DOCUMENT = {"your": ("document", "documentation", "section", "outline", "request",
                            "question", "prompt", "instructions"),
                   "this": ("document", "documentation", "section", "outline", "prompt"),
                   "the": ("document", "documentation", "section", "outline", "prompt",
                           "instructions")}
_PUNCTUATION = ".,;:!?()[]\"'`*_"
_FINAL = (".", "!", "?")
_CLOSING = ")]\"'`*_"  # may follow a sentence's end mark


@dataclass(frozen=True)
class Reason:
    """Why a sentence was dropped: a short code and what triggered it."""

    code: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}" if self.detail else self.code


@dataclass
class CheckContext:
    """What a sentence is judged against besides the vocabulary: the prompt's own
    words (its text without the variables' values), its lines as rendered (a model
    copies its input too) and the document's headings."""

    instructions: str = ""
    labels: list[str] = field(default_factory=list)
    prompt_lines: set[str] = field(default_factory=set)
    spec: SpecIndex | None = None  # the spec's operations, for what a sentence says of one

    @classmethod
    def of_prompt(cls, prompt: str, variables: dict[str, Any],
                  labels: list[str] | None = None,
                  spec: SpecIndex | None = None) -> CheckContext:
        instructions = prompt
        for value in sorted((str(v) for v in variables.values()), key=len, reverse=True):
            if len(value) > 3:
                instructions = instructions.replace(value, "\n")
        lines = {" ".join(_words(line)) for line in prompt[:MAX_TEXT].splitlines()}
        return cls(instructions, labels or [], {line for line in lines if " " in line}, spec)

    @cached_property
    def instruction_words(self) -> str:
        return " ".join(_words(self.instructions))

    @cached_property
    def instruction_trigrams(self) -> set[tuple[str, ...]]:
        return _grams(self.instruction_words.split(), 3)

    @cached_property
    def label_words(self) -> set[str]:
        return {w for label in self.labels for w in _words(label)}


def _words(text: str) -> list[str]:
    """Lower-case words, punctuation and code marks stripped."""
    stripped = (w.strip(_PUNCTUATION).lower() for w in text[:MAX_TEXT].split())
    return [w for w in stripped if w]


def _grams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def check_sentence(sentence: str, vocabulary: Vocabulary,
                   context: CheckContext | None = None) -> list[Reason]:
    """Every reason to drop this sentence, judged on its own (repeats across sentences
    are `check_prose`'s); none means it may be kept."""
    context = context or CheckContext()
    text = sentence.strip()[:MAX_TEXT]
    if text.startswith(("#", "|", "```", "~~~", ">")):
        return [Reason("not_prose", text[:40])]
    words = _words(text)
    reasons: list[Reason] = []
    if len(words) > MAX_SENTENCE_WORDS:
        reasons.append(Reason("too_long", f"{len(words)} words"))
    if not text.rstrip(_CLOSING).endswith(_FINAL) or text.count("`") % 2 or text.count(
            "(") != text.count(")"):
        reasons.append(Reason("cut_off", text[-20:]))
    if len(words) < 3 or not _GLUE.intersection(words) or (
            context.labels and sum(w in context.label_words for w in words)
            >= 0.6 * len(words)):
        reasons.append(Reason("labels_only", text[:60]))
    doubled = next((f"{a} {b}" for a, b in pairwise(text.split())
                    if a.lower() == b.lower() and a.strip(_PUNCTUATION).isalpha()), None)
    if doubled:
        reasons.append(Reason("doubled_word", doubled))
    repeated = _repeat_within(words)
    if repeated:
        reasons.append(Reason("repeated_phrase", repeated))
    if _echoes(words, context):
        reasons.append(Reason("prompt_echo", text[:60]))
    reader = _talks_to_reader(words)
    if reader:
        reasons.append(Reason("talks_to_reader", reader))
    reasons += [Reason(f"unsupported_{claim.kind}", claim.text) for claim in claims_of(text)
                if not vocabulary.supports(claim)]
    if context.spec is not None:
        reasons += [Reason(f"unsupported_{u.kind}", u.claim)
                    for u in unsupported_in(text, context.spec, vocabulary)]
    return reasons


def _repeat_within(words: list[str]) -> str:
    """A phrase of four words said twice in one sentence ("The endpoint is: The endpoint
    is:")."""
    seen: set[tuple[str, ...]] = set()
    for i in range(len(words) - 3):
        gram = tuple(words[i:i + 4])
        if gram in seen:
            return " ".join(gram)
        seen.add(gram)
    return ""


def _echoes(words: list[str], context: CheckContext) -> bool:
    if " ".join(words) in context.prompt_lines:
        return True
    if not words or not context.instructions:
        return False
    if len(words) >= 3 and f" {' '.join(words)} " in f" {context.instruction_words} ":
        return True
    own = _grams(words, 3)
    return bool(own) and len(own & context.instruction_trigrams) / len(own) >= ECHO_OVERLAP


def _talks_to_reader(words: list[str]) -> str:
    """What shows the sentence addresses the reader about the request or the document."""
    joined = f" {' '.join(words)} "
    found = next((p for p in _TO_READER if f" {p} " in joined), "")
    if found:
        return found
    return next((f"{owner} {noun}" for owner, nouns in _ABOUT_DOCUMENT.items()
                 for noun in nouns if f" {owner} {noun} " in joined), "")


@dataclass
class Dropped:
    sentence: str
    reasons: list[Reason]

    def to_json(self) -> dict[str, str]:
        return {"sentence": self.sentence, "reason": "; ".join(map(str, self.reasons))}


@dataclass
class Checked:
    """A model answer after the check: what was written, kept and dropped (and why)."""

    written: int = 0
    kept: list[str] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(self.kept)


@dataclass
class Repeats:
    """What earlier sentences said, so a repeat is caught across a whole document."""

    sentences: set[str] = field(default_factory=set)
    phrases: set[tuple[str, ...]] = field(default_factory=set)

    def repeat_of(self, words: list[str]) -> Reason | None:
        key = " ".join(words)
        if key in self.sentences:
            return Reason("repeated", key[:60])
        shared = next((tuple(words[i:i + PHRASE_WORDS]) for i in range(len(words))
                       if tuple(words[i:i + PHRASE_WORDS]) in self.phrases), None)
        return Reason("repeated_phrase", " ".join(shared)) if shared else None

    def add(self, words: list[str]) -> None:
        self.sentences.add(" ".join(words))
        self.phrases |= _grams(words, PHRASE_WORDS)

    def add_text(self, text: str) -> None:
        """What the document says besides the model (its lead paragraph, say)."""
        for sentence in prose_units(text):
            self.add(_words(sentence))


def check_prose(text: str, vocabulary: Vocabulary, context: CheckContext | None = None,
                repeats: Repeats | None = None) -> Checked:
    """A model answer (Markdown) sentence by sentence; `repeats` carries what earlier
    sections said. Only kept sentences count as said."""
    repeats = repeats if repeats is not None else Repeats()
    checked = Checked()
    for sentence in prose_units(text):
        checked.written += 1
        reasons = check_sentence(sentence, vocabulary, context)
        words = _words(sentence)
        repeat = repeats.repeat_of(words)
        if repeat is not None:
            reasons.insert(0, repeat)
        if reasons:
            checked.dropped.append(Dropped(sentence, reasons))
        else:
            checked.kept.append(sentence)
            repeats.add(words)
    return checked
