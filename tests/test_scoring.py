"""Turn scoring shared by filter, sample-rank and eval: filler phrase search."""

from prefkit.scoring import Scorer, VerbosityConfig


def phrases(text, **config):
    return Scorer(VerbosityConfig(**config)).filler_phrases(text)


def test_filler_phrases_are_found_case_insensitively_in_text_order():
    assert phrases("I HOPE THIS HELPS. Have a nice day") == ["i hope this helps", "have a nice day"]


def test_every_occurrence_counts():
    assert phrases("happy to help, really happy to help") == ["happy to help", "happy to help"]


def test_overlapping_phrases_count_once_as_the_longest():
    assert phrases("So I'd be happy to help here.") == ["i'd be happy to help"]
    assert phrases("i hope this helps") == ["i hope this helps"]


def test_overlaps_across_phrases_keep_the_longest_then_what_still_fits():
    assert phrases("a b c d", filler_phrases=["b c d", "a b"]) == ["b c d"]
    # "w q r" loses to the longer "x y z w"; its own tail "q r" still fits beside it.
    assert phrases("x y z w q r", filler_phrases=["x y z w", "w q r", "q r"]) == ["x y z w", "q r"]
    # Equally long overlapping phrases: the earlier one wins, whatever order the list gives them in.
    assert phrases("a b c d", filler_phrases=["b c d", "a b c"]) == ["a b c"]
    assert phrases("a b c d", filler_phrases=["a b c", "b c d"]) == ["a b c"]


def test_phrases_match_whole_words_only():
    assert phrases("the unsure thingy, as anything") == []
    assert phrases("the variable happy_to_help") == []
    assert phrases("as an aim") == []
    assert phrases("as an ai, I") == ["as an ai"]


def test_phrases_ending_in_punctuation_may_touch_the_next_word():
    assert phrases("Then, no problem!Next step.", flag_openers=False) == ["no problem!"]


def test_opener_counts_besides_the_phrases():
    assert phrases("Sure. I hope this helps") == ["sure", "i hope this helps"]
    assert phrases("Sure. I hope this helps", flag_openers=False) == ["i hope this helps"]


def test_an_empty_phrase_list_finds_only_openers():
    assert phrases("Certainly, I hope this helps", filler_phrases=[]) == ["certainly"]
    assert phrases("I hope this helps", filler_phrases=[], extra_filler_phrases=["  "]) == []


def test_user_phrases_are_added_lowercased():
    assert phrases("Roger That, querying", extra_filler_phrases=["Roger that"]) == ["roger that"]


SQL = "Thought: {}\nAction: Operation\n```sql\nSELECT name FROM t WHERE id = 3;\n```"


def score(thought):
    return Scorer().score("react", {"role": "assistant", "content": SQL.format(thought)})


def test_comparisons_agree_with_the_full_badness_tables():
    config = VerbosityConfig()
    turns = [
        score("I need the row."),
        score("Certainly! I need the row."),
        score("I need the row with id three now. I need the row with id three now."),
        score("I need the row."),
        score(" ".join(["word"] * 200)),
    ]
    for a in turns:
        for b in turns:
            table_a, table_b = a.badness(config), b.badness(config)
            assert a.no_worse_than(b, config) == all(table_a[r] <= table_b[r] for r in table_a)
            assert a.same_badness(b, config) == (table_a == table_b)


def test_a_turn_worse_only_by_repetition_is_worse():
    config = VerbosityConfig()
    clean, looping = (
        score("I need the row."),
        score("I need the row with id three now. I need the row with id three now."),
    )
    assert clean.no_worse_than(looping, config) and not looping.no_worse_than(clean, config)
    assert not clean.same_badness(looping, config)


def test_labels_are_left_out_of_repetition_whatever_their_case():
    scorer = Scorer()
    assert scorer._repetition("Thought 1: I check the table.\nTHOUGHT 2: I check the table.")[0] == 1
    assert scorer._repetition("> Action: I check the table.\n  observation: I check the table.")[0] == 1
    assert scorer._repetition("Thought 1: I check the table.\nThought 2: I check the chair.")[0] == 0
    # Code is not prose: the same statement twice in a code block is no repetition.
    assert scorer._repetition("I run it.\n```\nx = do_the_thing(1)\nx = do_the_thing(1)\n```")[0] == 0


def test_repeated_sentences_follow_the_sentence_definition():
    """Sentences end at whitespace after . ! ? or at line breaks; empty ones are not sentences."""
    import random
    import re

    definition = re.compile(r"(?<=[.!?])\s+|\n+")

    def expected(text, min_words):
        repeated, seen = 0, set()
        for sentence in definition.split(text.lower()):
            normal = " ".join(sentence.split())
            if normal and len(normal.split()) >= min_words:
                repeated += normal in seen
                seen.add(normal)
        return repeated

    rng = random.Random(0)
    pieces = ["a", "b", "c", ".", "!", "?", " ", "\n", "  ", ".\n", "x y", "\t", "\r\n", "\u00a0", "B."]
    for min_words in (1, 2):
        scorer = Scorer(VerbosityConfig(min_sentence_words=min_words, ngram_size=1, min_ngrams_for_ratio=1))
        for _ in range(5000):
            text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 16)))
            assert scorer._repetition(text)[0] == expected(text, min_words), repr(text)


def test_a_turn_the_benchmark_rejects_is_worse_than_any_it_accepts():
    scorer, config = Scorer(VerbosityConfig()), VerbosityConfig()

    def badness(text):
        return scorer.score("react", {"role": "assistant", "content": text}).rule_badness("format", config)

    sql = "```sql\nSELECT 1;\n```"
    clean = badness("Thought: x.\nAction: Operation\n" + sql)
    # accepted by AgentBench, three discipline codes: an inline label, a second action line, a second block
    lax = badness("Fine. Action: Operation\n" + sql + "\n" + sql + "\nAction: Answer\nFinal Answer: [1]")
    rejected = badness("Thought: x.\naction: Operation\n" + sql)  # AgentBench reads only "Action: "
    assert clean == 0 < lax < rejected
