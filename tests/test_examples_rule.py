"""The page's examples are judged by a checkable rule: each one is in bench/examples_rate.py's pool with its accepted
answers or a test, and the one that fails on purpose says so in its label."""
from bench.examples_rate import BY_TEXT, POOL
from dgemma_app.syntax import detect_language
from dgemma_app.ui.examples import EXAMPLES, FAILS_ON_PURPOSE, TEACHING_EXAMPLE


def test_every_page_example_has_a_rule_in_the_pool():
    for label, language, text in EXAMPLES:
        candidate = BY_TEXT[text]
        assert candidate.language == language and (candidate.accepted or candidate.test), label
        assert detect_language(text).language == language


def test_the_page_shows_several_languages_an_edit_two_gaps_and_one_labelled_failure():
    labels = [label for label, _, _ in EXAMPLES]
    assert {language for _, language, _ in EXAMPLES} >= {"python", "javascript", "go"}
    assert any("<EDIT>" in text for _, _, text in EXAMPLES)
    assert any(text.count("<FILL") >= 2 for _, _, text in EXAMPLES)
    assert TEACHING_EXAMPLE in labels and labels.count(FAILS_ON_PURPOSE) == 1 and FAILS_ON_PURPOSE.startswith("Fails on purpose")
    assert len({c.text for c in POOL}) == len(POOL)  # each candidate text rated once
