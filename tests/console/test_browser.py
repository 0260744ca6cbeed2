"""The console in a real browser: Debian's chromium driven by Playwright, against
the console served by waitress on loopback. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from console import create_app
from govsoc.config import load_config
from govsoc.events import utcnow
from store import open_store
from store.base import AlertStatus, NewCase, Role, User

from .conftest import PASSWORD, XSS, _password_hash, make_alert

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="Debian's chromium is not installed at /usr/bin/chromium "
                              "(apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The console on a free loopback port, with its store, for this module."""
    from waitress import create_server

    data_dir = tmp_path_factory.mktemp("browser-data")
    config = load_config(None, data_dir=data_dir, env={})
    store = open_store(config)
    for name, role, language in (("ana", Role.ANALYST, "en"), ("dee", Role.DETECTION_ENGINEER,
                                                               "en")):
        store.create_user(User(username=name, password_hash=_password_hash(), role=role,
                               created_at=utcnow(), language=language))
    app = create_app(config, store, {"CONSOLE_POLL_MS": 700})
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    port = server.effective_port
    yield {"url": f"http://127.0.0.1:{port}", "store": store}
    server.close()
    store.close()


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield launched
        launched.close()


class Watch:
    """Dialogs (alert/confirm from injected script) and CSP violations seen by a page."""

    def __init__(self, page) -> None:
        self.dialogs: list[str] = []
        self.csp: list[str] = []
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on("console", lambda m: self.csp.append(m.text)
                if "Content Security Policy" in m.text else None)


@pytest.fixture
def page(browser, live):
    context = browser.new_context(locale="en-GB", viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    opened.set_default_timeout(15000)
    opened.watch = Watch(opened)
    yield opened
    context.close()


def sign_in(page, live, username="ana"):
    page.goto(live["url"] + "/login")
    page.fill('[data-testid="username"]', username)
    page.fill('[data-testid="password"]', PASSWORD)
    page.click('[data-testid="sign-in"]')
    page.wait_for_url(re.compile(r".*/$"))


def test_sign_in(page, live, artifacts):
    page.goto(live["url"] + "/alerts")
    assert "/login" in page.url
    page.screenshot(path=str(artifacts / "console-login.png"))
    page.fill('[data-testid="username"]', "ana")
    page.fill('[data-testid="password"]', "wrong password")
    page.click('[data-testid="sign-in"]')
    assert page.locator('[data-testid="flash-error"]').is_visible()
    sign_in(page, live)
    assert page.locator('[data-testid="account"]').inner_text().startswith("ana")
    page.screenshot(path=str(artifacts / "console-dashboard.png"), full_page=True)
    # the vendored Chart.js ran under the CSP and drew both charts
    drawn = page.evaluate("() => ['chart-histogram', 'chart-severity'].map("
                          "id => !!window.Chart.getChart(document.getElementById(id)))")
    assert drawn == [True, True]
    assert page.watch.csp == []


def test_triage_an_alert_end_to_end(page, live, artifacts):
    store = live["store"]
    alert = make_alert(store, rule_name="Browser triage rule",
                       fields={"host.name": "triage-host", "source.ip": "10.20.30.40",
                               "user.name": "carol"})
    sign_in(page, live)
    page.goto(live["url"] + "/alerts")
    page.get_by_role("link", name="Browser triage rule").click()
    page.wait_for_url(f"**/alerts/{alert.id}")
    page.click('[data-testid="acknowledge"]')
    page.wait_for_selector('[data-testid="flash-ok"]')
    assert page.locator('[data-testid="assignee"]').inner_text() == "ana"
    page.select_option('[data-testid="status-select"]', "in_progress")
    page.click('[data-testid="save-triage"]')
    page.wait_for_selector('[data-testid="flash-ok"]')
    page.fill('[data-testid="comment-body"]', "Checked with the owner of triage-host")
    page.click('[data-testid="add-comment"]')
    page.wait_for_selector("text=Checked with the owner of triage-host")
    page.fill('[data-testid="fp-reason"]', "Scheduled vulnerability scan")
    page.click('[data-testid="close-fp"]')
    page.wait_for_selector('[data-testid="flash-ok"]')
    page.screenshot(path=str(artifacts / "console-alert-triaged.png"), full_page=True)
    final = store.get_alert(alert.id)
    assert final.status == AlertStatus.FALSE_POSITIVE
    assert final.resolution == "Scheduled vulnerability scan"
    assert final.assignee == "ana" and final.acknowledged_at is not None
    history = page.locator('[data-testid="history"]').inner_text()
    assert "alert.update" in history and "Checked with the owner" in history
    assert page.watch.csp == [] and page.watch.dialogs == []


def test_second_analyst_sees_a_conflict(browser, page, live, artifacts):
    store = live["store"]
    alert = make_alert(store, rule_name="Contested alert")
    sign_in(page, live)
    page.goto(f"{live['url']}/alerts/{alert.id}")
    other_context = browser.new_context(locale="en-GB")
    other = other_context.new_page()
    sign_in(other, live, "dee")
    other.goto(f"{live['url']}/alerts/{alert.id}")
    other.click('[data-testid="acknowledge"]')
    other.wait_for_selector('[data-testid="flash-ok"]')
    other_context.close()
    page.select_option('[data-testid="status-select"]', "resolved")
    page.click('[data-testid="save-triage"]')
    conflict = page.locator('[data-testid="flash-conflict"]')
    conflict.wait_for()
    assert "Someone else changed this alert" in conflict.inner_text()
    page.screenshot(path=str(artifacts / "console-alert-conflict.png"))
    assert store.get_alert(alert.id).status == AlertStatus.ACKNOWLEDGED


def test_build_a_case_from_two_alerts(page, live, artifacts):
    store = live["store"]
    first = make_alert(store, rule_name="Case source one",
                       fields={"host.name": "case-host-1", "source.ip": "192.0.2.10"})
    second = make_alert(store, rule_name="Case source two",
                        fields={"host.name": "case-host-2", "dns.question.name": "c2.example"})
    sign_in(page, live)
    page.goto(live["url"] + "/alerts")
    page.check(f'[data-testid="select-{first.id}"]')
    page.check(f'[data-testid="select-{second.id}"]')
    page.click('[data-testid="bulk-case"]')
    page.wait_for_selector('[data-testid="new-case-form"]')
    page.fill('[data-testid="case-title"]', "Two hosts talking to c2.example")
    page.click('[data-testid="create-case"]')
    page.wait_for_selector('[data-testid="case-alerts"]')
    alerts_table = page.locator('[data-testid="case-alerts"]').inner_text()
    assert "Case source one" in alerts_table and "Case source two" in alerts_table
    observables = page.locator('[data-testid="observables"]').inner_text()
    assert "192.0.2.10" in observables and "c2.example" in observables
    page.fill('[data-testid="task-title"]', "Block c2.example at the resolver")
    page.click('[data-testid="add-task"]')
    page.wait_for_selector("text=Block c2.example at the resolver")
    page.screenshot(path=str(artifacts / "console-case.png"), full_page=True)
    case_id = page.url.rsplit("/", 1)[-1]
    case = store.get_case(case_id)
    assert sorted(case.alert_ids) == sorted([first.id, second.id])
    assert [t.title for t in case.tasks] == ["Block c2.example at the resolver"]


def test_switch_language(page, live, artifacts):
    sign_in(page, live)
    page.goto(live["url"] + "/alerts")
    assert page.locator("h1").inner_text() == "Alert queue"
    page.click('[data-testid="lang-vi"]')
    page.wait_for_selector("h1:has-text('Hàng đợi cảnh báo')")
    assert page.locator("html").get_attribute("lang") == "vi"
    page.screenshot(path=str(artifacts / "console-vietnamese.png"))
    assert live["store"].get_user("ana").language == "vi"
    page.click('[data-testid="lang-en"]')
    page.wait_for_selector("h1:has-text('Alert queue')")


def test_xss_payloads_render_inert(page, live, artifacts):
    store = live["store"]
    alert = make_alert(store, rule_name="Payload <img src=x onerror=alert(9)>",
                       fields={**XSS, "source.ip": "10.66.66.66"}, matched=list(XSS))
    store.create_case(NewCase(title="<script>alert('case')</script>", created_by="ana",
                              alert_ids=[alert.id]))
    sign_in(page, live)
    for path in ("/alerts?status=", f"/alerts/{alert.id}", "/cases", "/"):
        page.goto(live["url"] + path)
        page.wait_for_load_state("load")
        assert page.evaluate("() => window.__xss") is None, path
        # nothing injected became an element
        injected = page.evaluate("() => document.querySelectorAll("
                                 "'img[src=x], iframe, svg[onload], script:not([src])"
                                 ":not([type=\"application/json\"])').length")
        assert injected == 0, path
    page.goto(f"{live['url']}/alerts/{alert.id}")
    text = page.locator('[data-testid="alert-fields"]').inner_text()
    for value in XSS.values():
        assert value in text  # shown as text, exactly as the attacker wrote it
    page.locator("details.event summary").first.click()
    page.screenshot(path=str(artifacts / "console-xss-inert.png"), full_page=True)
    assert page.watch.dialogs == []


def test_new_alerts_appear_without_reload(page, live, artifacts):
    sign_in(page, live)
    page.goto(live["url"] + "/alerts")
    page.wait_for_selector("#alert-table")
    arrived = make_alert(live["store"], rule_name="Arrived while watching <i>x</i>")
    row = page.locator(f'tr[data-alert-id="{arrived.id}"]')
    row.wait_for(timeout=10000)
    assert "Arrived while watching <i>x</i>" in row.inner_text()
    assert page.locator("#fresh-notice").is_visible()
    page.screenshot(path=str(artifacts / "console-live-queue.png"))
    assert page.watch.csp == []


def test_rule_upload_shows_errors_then_saves(page, live, artifacts):
    sign_in(page, live, "dee")
    page.goto(live["url"] + "/rules/upload")
    page.select_option('[data-testid="rule-language"]', "yara")
    page.fill('[data-testid="rule-text"]',
              'rule Browser_test {\n  strings: $a = "x"\n  condition: $missing }\n')
    page.click('[data-testid="rule-check"]')
    problems = page.locator('[data-testid="rule-problems"]')
    problems.wait_for()
    assert "line 3: undefined string" in problems.inner_text()
    page.screenshot(path=str(artifacts / "console-rule-errors.png"))
    page.fill('[data-testid="rule-text"]',
              'rule Browser_test {\n  strings: $a = "x"\n  condition: $a\n}\n')
    page.click('[data-testid="rule-save"]')
    page.wait_for_url("**/rules/yara:Browser_test/view")
    assert "Browser_test" in page.locator("h1").inner_text()
    page.click('[data-testid="toggle-rule"]')
    page.wait_for_selector('[data-testid="flash-ok"]')
    assert page.locator('[data-testid="rule-state"]').inner_text() == "disabled"
    assert "yara:Browser_test" in live["store"].get_setting("rules.disabled")
