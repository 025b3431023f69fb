"""Every patient-facing template speaks English, Spanish and Portuguese (issue 17, "Languages";
PAT-CONSENT: the patient reads what they sign in their own language).

Two checks, each able to fail: (1) no visible word in those templates stands outside a
``{% translate %}``/``{% blocktranslate %}`` tag — the template is read with Django's own Lexer, and
markup, styles and template variables (data, not text) are set aside; (2) every message of those tags
has a non-empty Spanish and Portuguese translation in the compiled catalogues that Django loads
(``src/pocare/locale/<lang>/LC_MESSAGES/django.mo``)."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from django.template.base import Lexer, TokenType
from django.utils import translation

import pocare

TEMPLATES = Path(pocare.__file__).parent / "patients" / "templates" / "patients"
#: The patient-facing templates: the documents; and, held to the same rule, the identity pages and the
#: documents' links (read at the treating hospital).
PATIENT_FACING = sorted([*(TEMPLATES / "documents").glob("*.html"), TEMPLATES / "identity.html",
                         TEMPLATES / "identity_erase.html", TEMPLATES / "_documents.html"])
LOCALE = Path(pocare.__file__).parent / "locale"
LANGUAGES = ("es", "pt")

_STRIPPED = [re.compile(p, re.S | re.I) for p in (r"<style\b.*?</style>", r"<script\b.*?</script>", r"<!--.*?-->",
                                                  r"<[^>]*>", r"&[a-z]+;|&#\d+;")]
_TRANSLATE = re.compile(r'^(?:translate|trans)\s+(["\'])(.*?)\1')
_BLOCK = re.compile(r"^(?:blocktranslate|blocktrans)\b")
_VAR = re.compile(r"^\s*([\w.]+)")


def _tokens(path: Path) -> list:  # type: ignore[type-arg]
    return Lexer(path.read_text(encoding="utf-8")).tokenize()


def visible_words(source: str) -> list[str]:
    """The words of ``source`` (a template) a reader would see that no translation tag holds: the
    text outside translation blocks, each template tag and variable standing as a blank (so that a
    tag inside an HTML element's attributes does not split the element), markup then set aside."""
    parts: list[str] = []
    in_block = False
    for token in Lexer(source).tokenize():
        if token.token_type == TokenType.BLOCK:
            if _BLOCK.match(token.contents):
                in_block = True
            elif token.contents.startswith(("endblocktranslate", "endblocktrans")):
                in_block = False
            parts.append(" ")
        elif token.token_type == TokenType.TEXT and not in_block:
            parts.append(token.contents)
        else:
            parts.append(" ")
    text = "".join(parts)
    for pattern in _STRIPPED:
        text = pattern.sub(" ", text)
    return re.findall(r"[^\W\d_]{2,}", text)


def messages(source: str) -> set[str]:
    """The msgids of the template's translation tags, as ``makemessages`` writes them."""
    found: set[str] = set()
    block: list[str] | None = None
    for token in Lexer(source).tokenize():
        if token.token_type == TokenType.BLOCK:
            contents = token.contents.strip()
            if m := _TRANSLATE.match(contents):
                found.add(m.group(2))
            elif _BLOCK.match(contents):
                block = []
            elif contents.startswith(("endblocktranslate", "endblocktrans")) and block is not None:
                found.add("".join(block))
                block = None
        elif block is not None and token.token_type == TokenType.TEXT:
            block.append(token.contents.replace("%", "%%"))
        elif block is not None and token.token_type == TokenType.VAR:
            block.append(f"%({_VAR.match(token.contents).group(1)})s")  # type: ignore[union-attr]
    return found


def _catalogue(language: str) -> dict[str, str]:
    with (LOCALE / language / "LC_MESSAGES" / "django.mo").open("rb") as mo:
        return gettext.GNUTranslations(mo)._catalog  # type: ignore[attr-defined,no-any-return]


def test_the_checks_can_fail():
    """The two checks find an untranslated word and a message, so a pass means something."""
    source = ('{% load i18n %}<p class="x">Hello {{ name }}</p><style>p { color: red }</style>'
              '{% translate "Yes" %}{% blocktranslate with p=x %}Dear {{ p }}, 5%{% endblocktranslate %}')
    assert visible_words(source) == ["Hello"]
    assert messages(source) == {"Yes", "Dear %(p)s, 5%%"}
    assert PATIENT_FACING and all(p.exists() for p in PATIENT_FACING)
    assert len(PATIENT_FACING) >= 8


@pytest.mark.parametrize("path", PATIENT_FACING, ids=lambda p: p.name)
def test_no_visible_text_outside_translation_tags(path):
    """Issue 17 "Languages": a patient-facing template shows no word that is not translatable."""
    assert visible_words(path.read_text(encoding="utf-8")) == [], path.name


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("path", PATIENT_FACING, ids=lambda p: p.name)
def test_every_message_is_translated(path, language):
    """Issue 17 "Languages", PAT-CONSENT: each message of a patient-facing template has a non-empty
    translation in the compiled Spanish and Portuguese catalogues."""
    catalogue = _catalogue(language)
    found = messages(path.read_text(encoding="utf-8"))
    assert found, path.name
    missing = sorted(m for m in found if not catalogue.get(m.replace("%%", "%") if "%(" not in m else m))
    assert not missing, f"{path.name}: no {language} translation for {missing}"


@pytest.mark.parametrize(("language", "expected"), [("es", "Sus citas"), ("pt", "As suas consultas")])
def test_django_loads_the_catalogues(language, expected):
    """The catalogues are where Django looks (LOCALE_PATHS) and are compiled."""
    with translation.override(language):
        assert translation.gettext("Your appointments") == expected
