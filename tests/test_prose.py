"""Language "auto" on the page's service: a paragraph is prose, code (comments included) is code, and text
that nothing fits is refused with a message that says why and how to choose."""
import pytest

from dgemma_app import syntax
from dgemma_app.ui.service import resolve_language


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("A diffusion model writes by refining a whole draft at once. <FILL:24> That is why it can fill the middle.", "text"),
        ("Die Katze schläft auf dem warmen Sofa. <FILL> Später frisst sie.", "text"),
        ("x = compute(a, b)  # then <FILL>\nprint(x)\n", "python"),
        ("# Sum the list, then show the total to the user.\ntotal = sum(xs)\nprint(total)\n", "python"),
    ],
)
def test_auto_resolves_prose_and_code(text, language):
    assert resolve_language(text, "auto") == language == syntax.detect_language(text).language


def test_auto_refuses_what_nothing_fits_and_says_why():
    with pytest.raises(syntax.UnknownLanguageError) as info:
        resolve_language("SELECT name FROM users WHERE id = <FILL>;", " Auto ")
    message = str(info.value)
    assert message.startswith("Could not tell the language from the text (no language fits; the closest")
    assert "Language menu" in message and "text for prose" in message


def test_a_named_language_is_taken_as_named():
    assert resolve_language("The quick brown fox jumps.", "Python") == "python"
    with pytest.raises(syntax.UnknownLanguageError, match="choose auto to detect it"):
        resolve_language("x", "cobol")
