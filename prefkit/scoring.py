"""Score one assistant turn on every rule prefkit knows: format validity and the verbosity measures.

`prefkit filter`, the `sample-rank` strategy and `prefkit eval` all score turns with this module, so a
turn means the same thing at every stage.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import ahocorasick
from pydantic import BaseModel, ConfigDict, Field

from prefkit.formats import ActionSpec, ParsedTurn, get_parser

DEFAULT_FILLER_PHRASES = (
    "certainly!",
    "certainly,",
    "of course!",
    "sure!",
    "sure thing",
    "absolutely!",
    "i'd be happy to help",
    "i would be happy to help",
    "i'm happy to help",
    "happy to help",
    "glad to help",
    "i'd be glad to",
    "great question",
    "good question",
    "excellent question",
    "i hope this helps",
    "hope this helps",
    "have a nice day",
    "have a great day",
    "let me know if you have any other questions",
    "let me know if you need anything else",
    "feel free to ask",
    "don't hesitate to ask",
    "as an ai",
    "as a language model",
    "i apologize for",
    "sorry for the confusion",
    "thank you for your patience",
    "thanks for asking",
    "let's dive in",
    "no problem!",
    "you're welcome",
)

_OPENER = re.compile(
    r"\s*(certainly|sure|absolutely|of course|great|okay|ok|alright|hello|hi there|gladly)\s*[.!,:;\-—]"
)
_SENTENCE_END = re.compile(r"([.!?])\s+")
_LABEL = re.compile(r"\n[ \t>]*(?:thought|think|action|final answer|observation)(?: \d+)?[ \t]*:[ \t]*")
_CODE = re.compile(r"```.*?(?:```|$)|<execute>.*?(?:</execute>|$)|<content>.*?(?:</content>|$)", re.S)


class VerbosityConfig(BaseModel):
    """Thresholds of the verbosity rules (shared by `filter`, `generate --strategy sample-rank` and `eval`)."""

    model_config = ConfigDict(extra="forbid")

    filler_phrases: list[str] = Field(
        default_factory=lambda: list(DEFAULT_FILLER_PHRASES),
        description="Chit-chat phrases (case-insensitive); replaces the default English list.",
    )
    extra_filler_phrases: list[str] = Field(default_factory=list, description="Phrases added to `filler_phrases`.")
    flag_openers: bool = Field(
        True, description='Count a turn opening with a pleasantry ("Sure.", "Certainly,") as filler.'
    )
    max_thought_tokens: int = Field(150, ge=1, description="Token budget of the reasoning before the action.")
    min_sentence_words: int = Field(4, ge=1, description="Sentences shorter than this are not counted as repeats.")
    max_repeated_sentences: int = Field(0, ge=0, description="Sentences allowed to occur more than once in a turn.")
    ngram_size: int = Field(3, ge=1, description="n of the word n-grams used to measure repetition.")
    max_repeated_ngram_ratio: float = Field(
        0.3, ge=0, le=1, description="Share of repeated n-grams in a turn's prose above which it is a loop."
    )
    min_ngrams_for_ratio: int = Field(
        12, ge=1, description="Turns with fewer n-grams are not checked for n-gram repeats."
    )


# The rules a turn is measured on, cheapest first: comparisons stop at the first rule that decides them.
RULES = ("format", "filler", "thought_budget", "loop", "multiple_actions", "trailing", "repetition")
REJECTED = 10  # the format badness of a turn the benchmark rejects, before counting its codes


@dataclass(slots=True)
class TurnScore:
    """The measures of one turn; `badness` turns them into per-rule numbers where higher is worse.

    Repetition is measured on first use: the filter needs it for every chosen turn but for a rejected
    turn only when a rule compares the two sides, and it is the dearest measure of a chatty turn.
    """

    parsed: ParsedTurn
    tokens: int
    thought_tokens: int
    filler: list[str] = field(default_factory=list)
    repeats_previous_action: bool = False
    text: str = ""  # repetition is measured on the prose part of this text
    measure_repetition: Callable[[str], tuple[int, float]] | None = None
    _repetition: tuple[int, float] | None = None

    def _measured(self) -> tuple[int, float]:
        if self._repetition is None:
            self._repetition = self.measure_repetition(self.text) if self.measure_repetition else (0, 0.0)
        return self._repetition

    @property
    def repeated_sentences(self) -> int:
        """Sentences (of enough words) that occur again in the turn."""
        return self._measured()[0]

    @property
    def repeated_ngram_ratio(self) -> float:
        """Share of the turn's word n-grams that are repeats."""
        return self._measured()[1]

    def badness(self, config: VerbosityConfig) -> dict[str, float]:
        """How badly the turn breaks each rule (0 = not at all); used to compare chosen with rejected."""
        return {rule: self.rule_badness(rule, config) for rule in RULES}

    def rule_badness(self, rule: str, config: VerbosityConfig) -> float:
        """How badly the turn breaks one rule of `RULES` (0 = not at all)."""
        if rule == "format":
            # A turn the benchmark rejects is worse than any it takes, however undisciplined.
            codes = self.parsed.codes
            rejected = [code for code in codes if code.startswith("format.")]
            return float(REJECTED + len(rejected) if rejected else len(codes))
        if rule == "filler":
            return float(len(self.filler))
        if rule == "thought_budget":
            return float(max(0, self.thought_tokens - config.max_thought_tokens))
        if rule == "loop":
            return float(self.repeats_previous_action)
        if rule == "multiple_actions":
            return float(max(0, len(self.parsed.actions) - 1))
        if rule == "trailing":
            return float(bool(self.parsed.trailing))
        if rule == "repetition":
            return float(max(0, self.repeated_sentences - config.max_repeated_sentences)) + max(
                0.0, self.repeated_ngram_ratio - config.max_repeated_ngram_ratio
            )
        raise ValueError(f"unknown rule {rule!r}")

    def no_worse_than(self, other: TurnScore, config: VerbosityConfig) -> bool:
        """True when this turn breaks no rule more than `other` does (repetition, the dearest, is measured
        only when every other rule leaves the question open)."""
        return all(self.rule_badness(rule, config) <= other.rule_badness(rule, config) for rule in RULES)

    def same_badness(self, other: TurnScore, config: VerbosityConfig) -> bool:
        """True when both turns break every rule exactly as badly (repetition measured last, if at all)."""
        return all(self.rule_badness(rule, config) == other.rule_badness(rule, config) for rule in RULES)

    def summary(self, repetition: bool = True) -> dict:
        """A compact JSON-able view, stored under `meta.filter.scores` (repetition measures on request)."""
        violations = self.parsed.violations
        out = {
            "valid": not violations,
            "accepted": self.parsed.accepted,
            "disciplined": self.parsed.disciplined,
            "violations": [violation.code for violation in violations],
            "tokens": self.tokens,
            "thought_tokens": self.thought_tokens,
            "filler": self.filler,
            "repeats_previous_action": self.repeats_previous_action,
        }
        if repetition:
            sentences, ratio = self._measured()
            out["repeated_sentences"] = sentences
            out["repeated_ngram_ratio"] = round(ratio, 3)
        return out


class Scorer:
    """Scores turns of one format under a verbosity config; compile once, score many."""

    def __init__(self, config: VerbosityConfig | None = None):
        self.config = config or VerbosityConfig()
        phrases = {p.lower().strip() for p in [*self.config.filler_phrases, *self.config.extra_filler_phrases]}
        # One pass over a turn finds every phrase at once (Aho-Corasick, in C); a regular expression with
        # the phrases as alternatives retries them at nearly every letter, and a clean turn is the common case.
        self._automaton = ahocorasick.Automaton(ahocorasick.STORE_ANY)
        for phrase in phrases:
            if phrase:
                # A phrase that ends in a letter must not run on into a longer word ("sure thing" in "thingy").
                self._automaton.add_word(phrase, (len(phrase), _is_word(phrase[-1])))
        self._searchable = bool(len(self._automaton))
        if self._searchable:
            self._automaton.make_automaton()

    def filler_phrases(self, text: str) -> list[str]:
        """Filler phrases found in `text` (whole words, case-insensitive), longest match first; a turn that
        opens with a pleasantry ("Sure.", "Certainly,", "Great -") counts it too, whatever the punctuation."""
        lowered = text.lower()
        opener = _OPENER.match(lowered)
        if opener and self.config.flag_openers:
            return [opener.group(1), *self._phrases_in(lowered[opener.end() :])]
        return self._phrases_in(lowered)

    def _phrases_in(self, lowered: str) -> list[str]:
        if not self._searchable:
            return []
        longest: list[tuple[int, int]] = []  # the longest whole-word match at each end, in text order
        overlap = False
        for last, (length, word_end) in self._automaton.iter(lowered):
            start, end = last + 1 - length, last + 1
            same_end = bool(longest) and longest[-1][1] == end
            if same_end and longest[-1][0] <= start:
                continue  # a shorter phrase inside one already found ("happy to help" in "i'd be happy to help")
            if not _whole_words(lowered, start, end, word_end):
                continue
            if same_end:
                longest[-1] = (start, end)
                overlap = overlap or (len(longest) > 1 and start < longest[-2][1])
            else:
                overlap = overlap or (bool(longest) and start < longest[-1][1])
                longest.append((start, end))
        if overlap:
            # Matches at different ends overlap: pick among all whole-word matches, longest first.
            longest = _longest_first(self._whole_word_spans(lowered))
        return [lowered[start:end] for start, end in longest]

    def _whole_word_spans(self, lowered: str) -> list[tuple[int, int]]:
        spans = ((last + 1 - length, last + 1, word_end) for last, (length, word_end) in self._automaton.iter(lowered))
        return [(start, end) for start, end, word_end in spans if _whole_words(lowered, start, end, word_end)]

    def score(
        self, format_name: str, message: dict, spec: ActionSpec | None = None, previous: dict | None = None
    ) -> TurnScore:
        """Score one assistant message; `previous` is the prompt's last assistant turn, for loop detection."""
        spec = spec or ActionSpec()
        parser = get_parser(format_name)
        parsed = parser(message, spec)
        text = message.get("content") or ""
        tokens = len(text.split())
        thought = parsed.thought
        score = TurnScore(
            parsed=parsed,
            tokens=tokens,
            # A turn without an action is often all thought: no need to count its words twice.
            thought_tokens=tokens if thought == text else len(thought.split()),
            filler=self.filler_phrases(text),
            text=text,
            measure_repetition=self._repetition,
        )
        if previous is not None and parsed.actions:
            before = parser(previous, spec)
            score.repeats_previous_action = bool(before.actions) and before.actions[0].key == parsed.actions[0].key
        return score

    def _repetition(self, text: str) -> tuple[int, float]:
        """(repeated sentences, repeated n-gram share) of the turn's prose: code and labels left out."""
        config = self.config
        prose = _CODE.sub(" ", text) if ("```" in text or "<" in text) else text
        # Labels are found after a newline in the lower-cased text: a search for a literal newline runs in C,
        # where a case-insensitive search anchored at line starts tries every position.
        prose = _LABEL.sub("\n", "\n" + prose.lower())[1:]
        words = prose.split()
        n = config.ngram_size
        total = len(words) - n + 1
        if total <= 0:
            grams = set()
        elif n == 3:
            grams = set(zip(words, words[1:], words[2:]))
        else:
            grams = set(zip(*[words[i:] for i in range(n)]))
        ratio = 1.0 - len(grams) / total if total >= config.min_ngrams_for_ratio else 0.0
        # A repeated sentence of >= n words repeats its n-grams: without repeated n-grams, skip the split.
        if len(grams) == total and config.min_sentence_words >= n:
            return 0, ratio
        repeated, seen = 0, set()
        # Every sentence on a line of its own: whitespace after . ! ? becomes a line break (a search for the
        # stops runs in C; a pattern that looks behind for them is tried at every position).
        for sentence in _SENTENCE_END.sub("\\1\n", prose).split("\n"):
            normal = " ".join(sentence.split())
            if not normal or normal.count(" ") + 1 < config.min_sentence_words:
                continue
            if normal in seen:
                repeated += 1
            seen.add(normal)
        return repeated, ratio


def _longest_first(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Non-overlapping spans picked longest first (then earliest), in text order."""
    kept: list[tuple[int, int]] = []
    for start, end in sorted(spans, key=lambda span: (span[0] - span[1], span[0])):
        if not any(a < end and start < b for a, b in kept):
            kept.append((start, end))
    return sorted(kept)


def _whole_words(text: str, start: int, end: int, word_end: bool) -> bool:
    """Whether text[start:end] neither starts inside a word nor, when it ends in a letter, runs on into one."""
    if start and _is_word(text[start - 1]):
        return False
    return not (word_end and end < len(text) and _is_word(text[end]))


def _is_word(char: str) -> bool:
    return char.isalnum() or char in "_'"


def previous_assistant(prompt: list[dict]) -> dict | None:
    """The last assistant message of a prompt, if any."""
    for message in reversed(prompt):
        if message.get("role") == "assistant":
            return message
    return None
