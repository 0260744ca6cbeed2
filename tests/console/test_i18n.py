"""Vietnamese and English per user, and times in the user's time zone."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from .conftest import csrf_token, make_alert

TRANSLATIONS = Path(__file__).resolve().parents[2] / "console" / "translations"


def test_sign_in_page_defaults_to_vietnamese(app):
    page = app.test_client().get("/login").get_data(as_text=True)
    assert 'lang="vi"' in page and "Đăng nhập" in page


def test_browser_preference_is_used_before_sign_in(app):
    page = app.test_client().get("/login", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert "Sign in" in page.get_data(as_text=True)


def test_language_switch_is_kept_on_the_user(analyst, store):
    assert "Alert queue" in analyst.get("/alerts").get_data(as_text=True)
    response = analyst.post("/language", data={"language": "vi", "next": "/alerts"})
    assert response.status_code == 302 and response.headers["Location"] == "/alerts"
    page = analyst.get("/alerts").get_data(as_text=True)
    assert "Hàng đợi cảnh báo" in page and 'lang="vi"' in page
    assert store.get_user("ana").language == "vi"
    # a new session of the same user gets Vietnamese from the user record
    client = analyst.client.application.test_client()
    client.post("/login", data={"username": "ana", "password": "correct horse battery",
                                "csrf_token": csrf_token(client)})
    assert "Hàng đợi cảnh báo" in client.get("/alerts").get_data(as_text=True)
    assert analyst.post("/language", data={"language": "fr"}).status_code == 400


def test_times_are_shown_in_the_users_time_zone(analyst, store):
    when = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
    alert = make_alert(store, when=when)
    page = analyst.get(f"/alerts/{alert.id}").get_data(as_text=True)
    assert "2026-01-01 07:30:00" in page  # Asia/Ho_Chi_Minh, UTC+7
    assert "Asia/Ho_Chi_Minh" in page
    user = store.get_user("ana")
    store.update_user(dataclasses.replace(user, timezone="Europe/Paris"))
    page = analyst.get(f"/alerts/{alert.id}").get_data(as_text=True)
    assert "2026-01-01 01:30:00" in page and "Europe/Paris" in page


def test_preferences_form_checks_the_zone(analyst, store):
    analyst.post("/account/preferences", data={"language": "en", "timezone": "Mars/Olympus"})
    assert store.get_user("ana").timezone == "Asia/Ho_Chi_Minh"
    analyst.post("/account/preferences", data={"language": "en", "timezone": "UTC"})
    assert store.get_user("ana").timezone == "UTC"


def test_vietnamese_catalogue_is_complete_and_compiled():
    template = read_po((TRANSLATIONS / "messages.pot").open("rb"))
    catalogue = read_po((TRANSLATIONS / "vi/LC_MESSAGES/messages.po").open("rb"), locale="vi")
    compiled = read_mo((TRANSLATIONS / "vi/LC_MESSAGES/messages.mo").open("rb"))
    wanted = {m.id for m in template if m.id}
    translated = {m.id: m.string for m in catalogue if m.id and m.string}
    assert wanted - set(translated) == set(), "untranslated messages"
    assert {m.id: m.string for m in compiled if m.id} == translated, "the .mo is stale"


def test_templates_and_code_have_no_message_missing_from_the_template():
    """Every message in the code is in messages.pot (extraction was re-run)."""
    from babel.messages.extract import extract_from_dir

    root = TRANSLATIONS.parent
    method_map = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None,
                "lazy_gettext": None}
    found = {msg for _f, _l, msg, _c, _ctx in extract_from_dir(
        str(root), method_map, keywords=keywords) if isinstance(msg, str)}
    template = {m.id for m in read_po((TRANSLATIONS / "messages.pot").open("rb")) if m.id}
    assert found - template == set()
