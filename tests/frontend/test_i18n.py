"""Every string a page shows has its zh_CN translation: Chinese is the default locale."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir

from frontend.i18n import catalog, current_locale, gettext

ROOT = Path(__file__).resolve().parents[2]
METHOD_MAP = [("frontend/**.py", "python"), ("frontend/templates/**.html", "jinja2")]
OPTIONS = {"frontend/templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def extracted_messages() -> dict[str, str]:
    found: dict[str, str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), METHOD_MAP, options_map=OPTIONS, keywords=KEYWORDS
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.setdefault(msgid, f"{filename}:{lineno}")
    return found


def test_every_page_string_has_a_chinese_translation() -> None:
    messages = extracted_messages()
    assert len(messages) > 25, "the extractor found too few strings: is it looking?"
    zh = catalog("zh_CN")
    missing = {msgid: where for msgid, where in messages.items() if msgid not in zh}
    assert not missing, f"untranslated for zh_CN: {missing}"


def test_locale_switches_the_language() -> None:
    token = current_locale.set("zh_CN")
    try:
        assert gettext("Open meeting") == "会议开放"
        current_locale.set("en")
        assert gettext("Open meeting") == "Open meeting"
    finally:
        current_locale.reset(token)


def test_site_speaks_chinese_first_and_english_on_request(client) -> None:
    page = client.get("/", headers={"accept": "text/html"})
    assert "西城区政务开放" in page.text
    english = client.get("/?lang=en", headers={"accept": "text/html"})
    assert "Xicheng open government" in english.text
    assert client.cookies.get("lang") == "en"
