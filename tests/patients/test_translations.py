"""Every template of the patients app speaks English, Spanish and Portuguese (issue 17, "Languages";
PAT-CONSENT: the patient reads what they sign in their own language; the navigator and the physician
work in theirs: booking, pathway, follow-up, outcomes).

Two checks, each able to fail: (1) no visible word in those templates stands outside a
``{% translate %}``/``{% blocktranslate %}`` tag — the template is read with Django's own Lexer, and
markup, styles and template variables (data, not text) are set aside; (2) every message of those tags
has a non-empty Spanish and Portuguese translation in the compiled catalogues that Django loads
(``src/pocare/locale/<lang>/LC_MESSAGES/django.mo``). Both hold for every template of the app, and every
message of the catalogues (the Python strings too: forms' labels, help texts, messages) is translated;
a real request shows the booking and navigator pages in Spanish once the language is switched."""

from __future__ import annotations

import datetime as dt
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
CORE = Path(pocare.__file__).parent / "core" / "templates"
#: Every template of the app: the staff's pages (booking, pathway, follow-up, outcomes) too; and the list
#: controls and pager of core that its lists include.
ALL_TEMPLATES = sorted([*TEMPLATES.rglob("*.html"), CORE / "core" / "_list_controls.html", CORE / "core" / "_pager.html"])
LOCALE = Path(pocare.__file__).parent / "locale"
LANGUAGES = ("es", "pt")

_STRIPPED = [re.compile(p, re.S | re.I) for p in (r"<style\b.*?</style>", r"<script\b.*?</script>", r"<!--.*?-->",
                                                  r"<[^>]*>", r"&[a-z]+;|&#\d+;")]
_TRANSLATE = re.compile(r'^(?:translate|trans)\s+(["\'])(.*?)\1(?:.*?\bcontext\s+(["\'])(.*?)\3)?')
_UNDERSCORE = re.compile(r'\b_\((["\'])(.*?)\1\)')
_CONTEXT = re.compile(r'\bcontext\s+(["\'])(.*?)\1')
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
    """The msgids of the template's translation tags, as ``makemessages`` writes them: ``_("...")`` in
    a tag's arguments too; a message with a context as ``context\x04msgid`` (the catalogue's key); a
    plural block by its singular; a ``trimmed`` block with its lines joined as Django joins them."""
    found: set[str] = set()
    block: list[str] | None = None
    context = trimmed = plural = None
    for token in Lexer(source).tokenize():
        if token.token_type in (TokenType.BLOCK, TokenType.VAR):
            found.update(m.group(2) for m in _UNDERSCORE.finditer(token.contents))
        if token.token_type == TokenType.BLOCK:
            contents = token.contents.strip()
            if m := _TRANSLATE.match(contents):
                found.add(f"{m.group(4)}\x04{m.group(2)}" if m.group(4) else m.group(2))
            elif _BLOCK.match(contents):
                block, plural = [], False
                trimmed = " trimmed" in f" {contents}"
                context = (c := _CONTEXT.search(contents)) and c.group(2)
            elif contents == "plural" and block is not None:
                plural = True
            elif contents.startswith(("endblocktranslate", "endblocktrans")) and block is not None:
                text = "".join(block)
                if trimmed:
                    text = " ".join(line.strip() for line in text.splitlines() if line.strip())
                found.add(f"{context}\x04{text}" if context else text)
                block = None
        elif block is not None and not plural and token.token_type == TokenType.TEXT:
            block.append(token.contents.replace("%", "%%"))
        elif block is not None and not plural and token.token_type == TokenType.VAR:
            block.append(f"%({_VAR.match(token.contents).group(1)})s")  # type: ignore[union-attr]
    return found


def _catalogue(language: str) -> dict:  # type: ignore[type-arg]
    with (LOCALE / language / "LC_MESSAGES" / "django.mo").open("rb") as mo:
        return gettext.GNUTranslations(mo)._catalog  # type: ignore[attr-defined,no-any-return]


def _translated(catalogue: dict, message: str) -> str:  # type: ignore[type-arg]
    """The translation of a message as read from a template (a plural one by its first form). A block's
    ``%`` is doubled whether or not it has variables (Django looks it up so); a ``translate`` tag's is not."""
    for key in dict.fromkeys((message, message.replace("%%", "%"))):
        if found := catalogue.get(key) or catalogue.get((key, 0)):
            return found  # type: ignore[no-any-return]
    return ""


def _po_messages(language: str) -> list[tuple[str, str, bool]]:
    """(msgid with its context, msgstr, fuzzy) of each live entry of the .po file (``--no-wrap``)."""
    entries = []
    for entry in (LOCALE / language / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8").split("\n\n"):
        lines = [line for line in entry.splitlines() if not line.startswith("#~")]
        msgid = next((line[7:-1] for line in lines if line.startswith('msgid "')), "")
        if not msgid:
            continue  # the header, or an obsolete entry
        context = next((line[9:-1] for line in lines if line.startswith('msgctxt "')), None)
        msgstr = next((line.split(" ", 1)[1][1:-1] for line in lines if line.startswith(("msgstr ", "msgstr[0] "))), "")
        fuzzy = any(line.startswith("#,") and "fuzzy" in line for line in lines)
        key = msgid.replace('\\"', '"').replace("\\\\", "\\")
        entries.append((f"{context}\x04{key}" if context else key, msgstr, fuzzy))
    return entries


def test_the_checks_can_fail():
    """The checks find an untranslated word and the messages of every kind of tag, so a pass means something."""
    source = ('{% load i18n %}<p class="x">Hello {{ name }}</p><style>p { color: red }</style>'
              '{% translate "Yes" %}{% blocktranslate with p=x %}Dear {{ p }}, 5%{% endblocktranslate %}')
    assert visible_words(source) == ["Hello"]
    assert messages(source) == {"Yes", "Dear %(p)s, 5%%"}
    assert messages('{% translate "Referred" context "patients counted" %}{% sort_header l "x" _("Stage") %}'
                    '{% blocktranslate count n=k %}{{ n }} visit{% plural %}{{ n }} visits{% endblocktranslate %}'
                    '{% blocktranslate trimmed %}\n  Two\n  lines\n{% endblocktranslate %}') == {
        "patients counted\x04Referred", "Stage", "%(n)s visit", "Two lines"}
    assert _translated(_catalogue("es"), "No such message in any catalogue") == ""
    assert PATIENT_FACING and all(p.exists() for p in PATIENT_FACING)
    assert len(PATIENT_FACING) >= 8
    names = {p.name for p in ALL_TEMPLATES}
    assert {"booking.html", "slots.html", "navigator.html", "patient.html", "followup.html", "followup_visit.html",
            "adverse_event.html", "outcomes.html", "refer.html", "eligibility.html", "consent.html"} <= names
    assert set(PATIENT_FACING) <= set(ALL_TEMPLATES)


@pytest.mark.parametrize("path", ALL_TEMPLATES, ids=lambda p: p.name)
def test_no_visible_text_outside_translation_tags(path):
    """Issue 17 "Languages": no template of the patients app shows a word that is not translatable."""
    assert visible_words(path.read_text(encoding="utf-8")) == [], path.name


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("path", ALL_TEMPLATES, ids=lambda p: p.name)
def test_every_message_is_translated(path, language):
    """Issue 17 "Languages", PAT-CONSENT: each message of a template of the patients app (the patient's
    documents, and the booking, pathway, follow-up and outcomes pages) has a non-empty translation in the
    compiled Spanish and Portuguese catalogues."""
    catalogue = _catalogue(language)
    found = messages(path.read_text(encoding="utf-8"))
    if path in PATIENT_FACING:
        assert found, path.name
    missing = sorted(m for m in found if not _translated(catalogue, m))
    assert not missing, f"{path.name}: no {language} translation for {missing}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_catalogue_message_is_translated_and_compiled(language):
    """Issue 17 "Languages": every message extracted from the app — the Python strings too (forms' labels
    and help texts, the messages and errors shown) — has a translation, none is a fuzzy guess (gettext
    does not compile those) and the compiled catalogue holds each one."""
    entries = _po_messages(language)
    assert len(entries) > 300
    assert not [m for m, _, fuzzy in entries if fuzzy], "fuzzy entries"
    assert not [m for m, msgstr, _ in entries if not msgstr], "empty msgstr"
    catalogue = _catalogue(language)
    assert not [m for m, _, _ in entries if not (catalogue.get(m) or catalogue.get((m, 0)))], "not compiled"


@pytest.mark.parametrize("language", LANGUAGES)
def test_labels_translated_when_shown_are_in_the_catalogues(language):
    """The pages translate some values when they show them (``{% translate row.stage_label %}``): the
    stages, what a referral waits for, the visits of the default follow-up schedule, and the choices the
    pages and forms show (booking status, slot kind, visit mode, response, persistence, adverse event
    kind, why a patient was lost, the ASTCT grading's choices)."""
    from pocare.patients import grading, models
    from pocare.patients.followup import DEFAULT_SCHEDULE
    from pocare.patients.followup_selectors import CORRECTED_FIELDS
    from pocare.patients.selectors import WAITS_FOR

    labels = {str(choice.label) for choices in (
        models.Stage, models.LostReason, models.ReferralSource, models.SlotKind, models.BookingStatus,
        models.VisitStatus, models.VisitMode, models.Response, models.Persistence, models.AdverseEventKind,
        models.ReminderState)
        for choice in choices} | set(WAITS_FOR.values()) | set(grading.OXYGEN_DEVICES.values())
    labels |= {text for table in (grading.CONSCIOUSNESS, grading.SEIZURES, grading.MOTOR, grading.RAISED_ICP)
               for _grade, text in table.values()}
    labels |= {v["label"] for v in DEFAULT_SCHEDULE}
    labels |= set(models.QUESTION_LABELS.values()) | set(models.ANSWER_LABELS.values())
    labels |= set(CORRECTED_FIELDS.values())  # a correction's fields, named on the follow-up page
    assert {"Year 3", "Year 15", "Grading inputs"} <= labels
    catalogue = _catalogue(language)
    assert not sorted(label for label in labels if not catalogue.get(label))


@pytest.mark.parametrize(("language", "expected"), [("es", "Sus citas"), ("pt", "As suas consultas")])
def test_django_loads_the_catalogues(language, expected):
    """The catalogues are where Django looks (LOCALE_PATHS) and are compiled."""
    with translation.override(language):
        assert translation.gettext("Your appointments") == expected


def _page(client, url: str, **headers: str) -> str:  # type: ignore[no-untyped-def]
    response = client.get(url, **headers)
    assert response.status_code == 200
    return response.content.decode()  # type: ignore[no-any-return]


@pytest.mark.django_db
def test_the_booking_and_navigator_pages_speak_spanish_once_switched(client, login, referral):
    """Issue 17 "Languages" (browser test: "the navigator books a site and slot chain (Spanish)"): after
    the language switcher's POST the navigator's pages come in Spanish, the stage read from the record
    included, the list controls and what is late too, and go back to English when switched back."""
    from django.urls import reverse

    login("navigator.mad")
    booking = reverse("patients:booking", kwargs={"pseudonym": referral.patient.pseudonym})
    navigator = reverse("patients:navigator")
    english = _page(client, booking)
    assert "Slot chain of" in english and "Cadena de huecos de" not in english

    assert client.post(reverse("web:language"), {"language": "es", "next": booking}).status_code == 302
    body = _page(client, booking)
    assert '<html lang="es"' in body
    assert f"Cadena de huecos de {referral.patient.pseudonym}" in body and "Cadena reservada" in body
    assert "Slot chain of" not in body and "Booked chain" not in body
    page = _page(client, navigator)
    assert "Cada paciente de sus hospitales con su seudónimo" in page
    assert ">Derivado</span>" in page  # the stage badge, translated when shown
    assert "Each patient at your hospitals" not in page
    # The list's controls (core) and what is late, in Spanish too.
    assert ">Buscar</button>" in page and "Exportar CSV" in page and "Hospital tratante" in page
    assert "Seudónimo, indicación, producto, hospital o COI" in page and "Ordenar por" in page
    referral.stage_changed_at -= dt.timedelta(days=30)
    referral.save(update_fields=["stage_changed_at"])
    assert "Evaluación de la elegibilidad: espera de 30 días" in _page(client, navigator)

    client.post(reverse("web:language"), {"language": "en-gb", "next": "/"})
    assert "Slot chain of" in _page(client, booking)


@pytest.mark.django_db
def test_the_language_cookie_alone_chooses_spanish(client, login, referral):
    """The choice lives in Django's language cookie (LocaleMiddleware reads it on every request)."""
    from django.conf import settings
    from django.urls import reverse

    login("navigator.mad")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "es"
    body = _page(client, reverse("patients:booking", kwargs={"pseudonym": referral.patient.pseudonym}))
    assert "Cadena de huecos de" in body
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "pt"
    assert "Cadeia de vagas de" in _page(client, reverse("patients:booking",
                                                               kwargs={"pseudonym": referral.patient.pseudonym}))


@pytest.mark.django_db
def test_the_follow_up_page_and_its_work_queue_speak_portuguese(client, login, people, referral):
    """Issue 17 "Languages": the follow-up page in Portuguese — the yearly visit labels built by the default
    schedule ("Year 3" → "Ano 3"), the states, a correction's field names — and the work queue line of a
    visit due, computed in the request's language."""
    from django.conf import settings
    from django.urls import reverse
    from django.utils import timezone

    from pocare.ledger.signing import SigningCredentials
    from pocare.patients.followup import followup_schedule_create, visit_correct, visit_record
    from pocare.patients.models import Visit
    from pocare.patients.queues import FOLLOW_UP
    from tests.conftest import PASSWORD

    referral.referred_at = timezone.now() - dt.timedelta(days=60)
    referral.save(update_fields=["referred_at"])
    physician = people["physician.mad"]
    followup_schedule_create(referral=referral, infused_at=timezone.now() - dt.timedelta(days=7), actor=physician)
    done_at = timezone.now() - dt.timedelta(hours=2)
    day7 = visit_record(actor=physician, visit=Visit.objects.get(referral=referral, label="Day 7"), mode="in_person",
                        done_at=done_at, alive=True)
    visit_correct(actor=physician, visit=day7, mode="in_person", done_at=done_at, alive=True, response="PR", reason="Response was assessed",
                  credentials=SigningCredentials(password=PASSWORD, username=physician.username))
    login(physician.username)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "pt"
    page = _page(client, reverse("patients:followup", args=[referral.patient.pseudonym]))
    assert "Ano 3" in page and "Ano 15" in page and "Year 3" not in page
    assert "Resposta da doença" in page and "Corrigido para" in page
    assert "Registado primeiro (guardado)" in page and "Recorded first" not in page
    with translation.override("pt"):
        line = FOLLOW_UP.describe(Visit.objects.get(referral=referral, label="Day 14")).text
    assert "seguimento Dia 14" in line, line
