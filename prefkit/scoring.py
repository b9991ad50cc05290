"""Score one assistant turn on every rule prefkit knows: format validity and the verbosity measures.

`prefkit filter`, the `sample-rank` strategy and `prefkit eval` all score turns with this module, so a
turn means the same thing at every stage.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from prefkit.formats import ActionSpec, ParsedTurn, get_parser

DEFAULT_FILLER_PHRASES = (
    "certainly!", "certainly,", "of course!", "sure!", "sure thing", "absolutely!",
    "i'd be happy to help", "i would be happy to help", "i'm happy to help", "happy to help",
    "glad to help", "i'd be glad to", "great question", "good question", "excellent question",
    "i hope this helps", "hope this helps", "have a nice day", "have a great day",
    "let me know if you have any other questions", "let me know if you need anything else",
    "feel free to ask", "don't hesitate to ask", "as an ai", "as a language model",
    "i apologize for", "sorry for the confusion", "thank you for your patience", "thanks for asking",
    "let's dive in", "no problem!", "you're welcome",
)

_WORD = re.compile(r"\w+|[^\w\s]")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")
_LABEL = re.compile(r"^[ \t>]*(?:thought|think|action|final answer|observation)(?: \d+)?[ \t]*:[ \t]*", re.I | re.M)
_CODE = re.compile(r"```.*?(?:```|$)|<execute>.*?(?:</execute>|$)|<content>.*?(?:</content>|$)", re.S)


class VerbosityConfig(BaseModel):
    """Thresholds of the verbosity rules (shared by `filter`, `generate --strategy sample-rank` and `eval`)."""

    model_config = ConfigDict(extra="forbid")

    filler_phrases: list[str] = Field(
        default_factory=lambda: list(DEFAULT_FILLER_PHRASES),
        description="Chit-chat phrases (case-insensitive); replaces the default English list.",
    )
    extra_filler_phrases: list[str] = Field(default_factory=list, description="Phrases added to `filler_phrases`.")
    max_thought_tokens: int = Field(150, ge=1, description="Token budget of the reasoning before the action.")
    min_sentence_words: int = Field(4, ge=1, description="Sentences shorter than this are not counted as repeats.")
    max_repeated_sentences: int = Field(0, ge=0, description="Sentences allowed to occur more than once in a turn.")
    ngram_size: int = Field(3, ge=1, description="n of the word n-grams used to measure repetition.")
    max_repeated_ngram_ratio: float = Field(
        0.3, ge=0, le=1, description="Share of repeated n-grams in a turn's prose above which it is a loop."
    )
    min_ngrams_for_ratio: int = Field(12, ge=1, description="Turns with fewer n-grams are not checked for n-gram repeats.")


@dataclass
class TurnScore:
    """The measures of one turn; `badness` turns them into per-rule numbers where higher is worse."""

    parsed: ParsedTurn
    tokens: int
    thought_tokens: int
    filler: list[str] = field(default_factory=list)
    repeated_sentences: int = 0
    repeated_ngram_ratio: float = 0.0
    repeats_previous_action: bool = False

    def badness(self, config: VerbosityConfig) -> dict[str, float]:
        """How badly the turn breaks each rule (0 = not at all); used to compare chosen with rejected."""
        return {
            "format": float(len(self.parsed.violations)),
            "filler": float(len(self.filler)),
            "thought_budget": float(max(0, self.thought_tokens - config.max_thought_tokens)),
            "repetition": float(max(0, self.repeated_sentences - config.max_repeated_sentences))
            + max(0.0, self.repeated_ngram_ratio - config.max_repeated_ngram_ratio),
            "loop": float(self.repeats_previous_action),
            "multiple_actions": float(max(0, len(self.parsed.actions) - 1)),
            "trailing": float(bool(self.parsed.trailing)),
        }

    def summary(self) -> dict:
        """A compact JSON-able view, stored under `meta.filter.scores`."""
        return {
            "valid": self.parsed.valid,
            "violations": self.parsed.codes,
            "tokens": self.tokens,
            "thought_tokens": self.thought_tokens,
            "filler": self.filler,
            "repeated_sentences": self.repeated_sentences,
            "repeated_ngram_ratio": round(self.repeated_ngram_ratio, 3),
            "repeats_previous_action": self.repeats_previous_action,
        }


class Scorer:
    """Scores turns of one format under a verbosity config; compile once, score many."""

    def __init__(self, config: VerbosityConfig | None = None):
        self.config = config or VerbosityConfig()
        phrases = [p.lower() for p in [*self.config.filler_phrases, *self.config.extra_filler_phrases] if p.strip()]
        # Longest first so "i hope this helps" wins over "hope this helps" in the alternation.
        alternatives = "|".join(re.escape(p) for p in sorted(set(phrases), key=len, reverse=True))
        self._filler = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)" if alternatives else r"(?!x)x", re.I)

    def filler_phrases(self, text: str) -> list[str]:
        """Filler phrases found in `text`, lower-cased, in order."""
        return [match.group(0).lower() for match in self._filler.finditer(text)]

    def score(self, format_name: str, message: dict, spec: ActionSpec | None = None,
              previous: dict | None = None) -> TurnScore:
        """Score one assistant message; `previous` is the prompt's last assistant turn, for loop detection."""
        spec = spec or ActionSpec()
        parser = get_parser(format_name)
        parsed = parser(message, spec)
        text = message.get("content") or ""
        prose = _CODE.sub(" ", text) if ("```" in text or "<" in text) else text
        prose = _LABEL.sub("", prose)
        score = TurnScore(
            parsed=parsed,
            tokens=len(_WORD.findall(text)),
            thought_tokens=len(_WORD.findall(parsed.thought)) if parsed.thought else 0,
            filler=self.filler_phrases(text),
        )
        score.repeated_sentences, score.repeated_ngram_ratio = self._repetition(prose)
        if previous is not None and parsed.actions:
            before = parser(previous, spec)
            score.repeats_previous_action = bool(before.actions) and before.actions[0].key == parsed.actions[0].key
        return score

    def _repetition(self, prose: str) -> tuple[int, float]:
        config = self.config
        sentences = [" ".join(s.lower().split()) for s in _SENTENCE_SPLIT.split(prose)]
        counts = Counter(s for s in sentences if len(s.split()) >= config.min_sentence_words)
        repeated = sum(count - 1 for count in counts.values() if count > 1)
        words = prose.lower().split()
        n = config.ngram_size
        total = len(words) - n + 1
        if total < config.min_ngrams_for_ratio:
            return repeated, 0.0
        grams = {tuple(words[i:i + n]) for i in range(total)}
        return repeated, 1.0 - len(grams) / total


def previous_assistant(prompt: list[dict]) -> dict | None:
    """The last assistant message of a prompt, if any."""
    for message in reversed(prompt):
        if message.get("role") == "assistant":
            return message
    return None
