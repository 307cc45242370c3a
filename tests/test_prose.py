"""Language "auto" takes a paragraph as prose, and code (comments included) as code."""
import pytest

from dgemma_app.prose import guess_language, looks_like_prose
from dgemma_app.ui.examples import EXAMPLES
from dgemma_app.ui.service import resolve_language


@pytest.mark.parametrize(
    ("text", "prose"),
    [
        ("A diffusion model writes by refining a whole draft at once. <FILL:24> That is why it can fill the middle.", True),
        ("Dear team, the release is on Friday. <FILL> Thanks!", True),
        ("Die Katze schläft auf dem warmen Sofa. <FILL> Später frisst sie.", True),
        ("x = compute(a, b)  # then <FILL>\nprint(x)\n", False),
        ("SELECT name FROM users WHERE id = <FILL>;", False),
        ("x1 <FILL> y2", False),
        ("", False),
    ],
)
def test_prose_is_told_from_code(text, prose):
    assert looks_like_prose(text) is prose


def test_auto_fills_a_paragraph_as_text_and_code_as_its_language():
    for _, language, text in EXAMPLES:
        assert guess_language(text) == language
    assert resolve_language("Words go here and more words follow. <FILL> The end.", "auto") == "text"
